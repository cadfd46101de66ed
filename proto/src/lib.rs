//! The swarmr vocabulary: the objects of the cluster state and the gRPC services between the
//! CLI, managers and workers. Generated from `proto/swarmr/*.proto`; never edited by hand.
//! Conversions and small helpers live in `convert/`, one file per type.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

tonic::include_proto!("swarmr");

pub mod convert;

pub mod limits;
