//! Generated types and client of the GoBGP API subset in `proto/`.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("apipb");
