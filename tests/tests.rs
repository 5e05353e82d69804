//! End-to-end tests of the `vigil` binary, run as a separate process.

mod board;
mod calibrate;
mod compose;
mod decode;
mod evaluate;
mod faults;
mod figures;
mod run;
mod score;
mod tail;
mod train;
mod util;
