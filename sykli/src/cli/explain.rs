//! `sykli explain [TASK]`: what a run would do and why.
