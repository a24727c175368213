//! The vendor parts a layout file cannot express, written by hand.

pub mod decentlab;
pub mod dingtek;
pub mod dragino;
