//! Turning people into records: attribute mappings, and for now a one-shot
//! push through a connection. The planner, preference enforcement over
//! durable links, and the scheduler grow here.

pub mod mapping;
pub mod push;
