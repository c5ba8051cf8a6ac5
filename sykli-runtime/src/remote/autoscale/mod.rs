//! The autoscaler of `sykli serve`: a load forecast ([`forecast`]), a scaling policy
//! ([`policy`]), a provider of workers ([`provider`], [`local`] processes) and the control
//! loop tying them to the pool's load ([`controller`]).

pub mod controller;
pub mod forecast;
pub mod local;
pub mod policy;
pub mod provider;
