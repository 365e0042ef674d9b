//! Integration tests of wakehub-core, compiled as one binary. None needs root, a daemon or
//! the network: the model, the planner, the engine on the simulated connector, the store
//! and the topology file. Tests against real peers live in the top-level `tests/` crate.

mod compose;
mod energy;
mod engine;
mod idle;
mod layers;
mod machine_probe;
mod machine_state;
mod maintenance;
mod model;
mod model_props;
mod planner;
mod planner_props;
mod schedules;
mod secrets;
mod store;
mod support;
mod topology_file;
