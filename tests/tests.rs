//! End-to-end tests of the `vigil` binary, run as a separate process.

mod score;
mod util;
