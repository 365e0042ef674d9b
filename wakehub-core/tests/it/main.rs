//! Integration tests of wakehub-core, compiled as one binary.

mod model;
mod model_props;
mod store;
mod support;
mod topology_file;
