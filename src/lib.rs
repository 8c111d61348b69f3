//! Punie: a coding agent for editors, speaking the Agent Client Protocol (ACP v1), running on
//! models you host yourself.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod acp;
pub mod agent;
pub mod llm;
pub mod tools;
pub mod workspace;
