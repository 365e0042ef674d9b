//! The SDL is committed (`wakehub-graphql/schema.graphql`): a schema change is a reviewed
//! change. `UPDATE_SCHEMA=1 cargo test` rewrites the file.

#[test]
fn the_committed_sdl_matches_the_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let sdl = wakehub_graphql::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == sdl,
        "the GraphQL schema changed: review the difference, then run `UPDATE_SCHEMA=1 cargo test -p wakehub-graphql` and commit schema.graphql"
    );
}
