//! Punie's integration tests, as one crate with a module per suite.
//!
//! One crate rather than one per file: each test crate links the whole agent, so twenty-odd of
//! them cost twenty-odd links on every change to `src/`, and helpers in [`support`] used by only
//! some suites had to be silenced as dead code in the others. The tests run as threads of one
//! process, so none of them may change process-wide state (environment variables, the current
//! directory, signal dispositions); what needs that runs in a child process: the `punie` binary
//! (`env!("CARGO_BIN_EXE_punie")`), or this binary re-run as a helper (see
//! [`support::libtest_name`]).
//!
//! Fixtures and snapshots stay beside this directory, in `tests/fixtures/` and
//! `tests/snapshots/`, read through `CARGO_MANIFEST_DIR`.

mod support;

mod ask;
mod cli_doctor;
mod cli_first_run;
mod cli_help;
mod cli_init;
mod cli_stdio;
mod commands;
mod context_budget;
mod e2e_acp;
mod e2e_bare_calls;
mod e2e_discovery;
mod e2e_models;
mod e2e_wire;
mod hostile_model;
mod images;
mod inbound_lines;
mod instructions;
mod library_api;
mod llm_client;
mod llm_server;
mod llm_text_tools;
mod local_process;
mod long_answers;
mod loops;
mod mcp;
mod modes;
mod perf_acp;
mod perf_browser;
mod perf_modes;
mod plans;
mod prompt_cache;
mod sandbox;
mod sandbox_scopes;
mod serve;
mod serve_descriptors;
mod serve_limits;
mod serve_sessions;
mod serve_soak;
mod server_wait;
mod sessions;
mod sessions_cli;
mod tool_call_cap;
mod tools_files;
mod tools_search;
