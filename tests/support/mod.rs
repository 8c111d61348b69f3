//! Shared helpers for the integration tests: `mod support;` in a test file brings them in.
#![allow(dead_code)]

pub mod editor;
pub mod fake_model;
pub mod model_client;
pub mod served;
