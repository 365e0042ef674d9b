//! Integration tests of the `wakehub` binary and the GraphQL server, as one test binary.

mod cli;
