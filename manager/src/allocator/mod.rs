pub mod ipam;
