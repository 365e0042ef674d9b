//! A plain WASI command: a valid component, but not a connector.
fn main() {
    println!("hello from the wrong world");
}
