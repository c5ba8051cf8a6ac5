//! Procedural macros for sykli.
