//! Library parts of the benchmark and attack programs, so that tests can run them too.

pub mod attack;
