//! `run_command` and the tools that manage commands left running in the background.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::{
    CommandRequest, ExitStatus, TerminalId, TerminalOutput, ToolContent, ToolKind,
};

/// Output kept per command; older output is dropped first.
const OUTPUT_BYTE_LIMIT: u64 = 64 * 1024;

/// Characters that mean the model wrote a shell command line rather than a program name.
const SHELL_SYNTAX: &[char] = &[
    ' ', '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '~', '\n', '"', '\'',
];

/// Runs a command in the workspace (after the person allows it) and returns its output.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunCommand;

#[derive(Deserialize)]
struct RunArgs {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    cwd: Option<String>,
}

/// Splits what the model asked for into program and arguments; a command line with shell
/// syntax and no separate arguments runs through `sh -c`, as the model meant it.
fn program_and_args(command: &str, args: Vec<String>) -> (String, Vec<String>) {
    if args.is_empty() && command.contains(SHELL_SYNTAX) {
        ("sh".to_owned(), vec!["-c".to_owned(), command.to_owned()])
    } else {
        (command.to_owned(), args)
    }
}

fn command_line(args: &Value) -> String {
    let command = args.get("command").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<&str> = args
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if rest.is_empty() {
        command.to_owned()
    } else {
        format!("{command} {}", rest.join(" "))
    }
}

fn describe_exit(status: &ExitStatus) -> String {
    match (&status.exit_code, &status.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by {signal}"),
        (None, None) => "exited".to_owned(),
    }
}

fn format_output(output: &TerminalOutput) -> String {
    let mut text = String::new();
    if output.truncated {
        text.push_str("[earlier output was cut to keep the most recent part]\n");
    }
    text.push_str(&output.output);
    text
}

impl Tool for RunCommand {
    fn name(&self) -> &str {
        "run_command"
    }

    fn description(&self) -> &str {
        "Run a command in the workspace and return its exit status and output. `command` is a \
         program (with `args`) or a shell command line. `cwd` is relative to the workspace root. \
         The user is asked to approve it. A command still running after the time limit keeps \
         running in the background; use get_terminal_output, wait_for_terminal_exit, \
         kill_terminal and release_terminal with the terminal id you are given."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "Program to run, or a shell command line"},
                "args": {"type": "array", "items": {"type": "string"}, "description": "Arguments"},
                "cwd": {"type": "string", "description": "Working directory, relative to the workspace root"}
            },
            "required": ["command"]
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    fn needs_permission(&self) -> bool {
        true
    }

    fn title(&self, args: &Value) -> String {
        format!("Run `{}`", command_line(args))
    }

    fn preview<'a>(
        &'a self,
        args: &'a Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<Vec<ToolContent>, ToolError>> {
        Box::pin(async move {
            let run: RunArgs = parse_args(self.name(), args)?;
            let cwd = ctx.workspace.resolve(run.cwd.as_deref().unwrap_or("."))?;
            Ok(vec![ToolContent::Text(format!(
                "$ {}   (in {})",
                command_line(args),
                cwd.display()
            ))])
        })
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let run: RunArgs = parse_args(self.name(), &args)?;
            let cwd = ctx.workspace.resolve(run.cwd.as_deref().unwrap_or("."))?;
            let (command, args) = program_and_args(&run.command, run.args);
            let terminals = &ctx.workspace.terminals;
            let id = terminals
                .create(CommandRequest {
                    command,
                    args,
                    cwd,
                    env: Vec::new(),
                    output_byte_limit: Some(OUTPUT_BYTE_LIMIT),
                })
                .await?;
            ctx.terminals.track(&id);
            ctx.report(vec![ToolContent::Terminal(id.clone())]);

            let exit =
                tokio::time::timeout(ctx.command_timeout, terminals.wait_for_exit(&id)).await;
            let output = terminals.output(&id).await?;
            let text = format_output(&output);
            let content = vec![ToolContent::Terminal(id.clone())];
            match exit {
                Ok(status) => {
                    let status = status?;
                    // The editor keeps showing a released terminal's last output.
                    terminals.release(&id).await?;
                    ctx.terminals.forget(&id);
                    Ok(ToolOutput {
                        text: format!("{}\n{text}", describe_exit(&status)),
                        content,
                        raw_output: json!({
                            "exitCode": status.exit_code,
                            "signal": status.signal,
                            "output": output.output,
                            "truncated": output.truncated,
                        }),
                    })
                }
                Err(_elapsed) => Ok(ToolOutput {
                    text: format!(
                        "still running after {} s; it keeps running as terminal `{}`. Output so far:\n{text}",
                        ctx.command_timeout.as_secs(),
                        id.0
                    ),
                    content,
                    raw_output: json!({"terminalId": id.0, "running": true, "output": output.output}),
                }),
            }
        })
    }
}

#[derive(Deserialize)]
struct TerminalArgs {
    terminal_id: String,
    timeout_secs: Option<u64>,
}

fn terminal_schema(with_timeout: bool) -> Value {
    let mut properties = json!({
        "terminal_id": {"type": "string", "description": "The terminal id run_command gave"}
    });
    if with_timeout {
        properties["timeout_secs"] = json!({"type": "integer", "minimum": 1, "description": "Longest wait in seconds (default 60)"});
    }
    json!({"type": "object", "properties": properties, "required": ["terminal_id"]})
}

/// Parses the terminal id and checks the session started that terminal.
fn owned_terminal(
    tool: &str,
    args: &Value,
    ctx: &ToolContext,
) -> Result<(TerminalId, TerminalArgs), ToolError> {
    let parsed: TerminalArgs = parse_args(tool, args)?;
    let id = TerminalId(parsed.terminal_id.clone());
    if !ctx.terminals.owns(&id) {
        return Err(ToolError::Failed(format!(
            "unknown terminal `{}`: only terminals started by run_command in this session and not yet released can be used",
            id.0
        )));
    }
    Ok((id, parsed))
}

macro_rules! terminal_tool {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $description:literal, $with_timeout:literal, |$id:ident, $parsed:ident, $ctx:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty;

        impl Tool for $ty {
            fn name(&self) -> &str {
                $name
            }

            fn description(&self) -> &str {
                $description
            }

            fn parameters(&self) -> Value {
                terminal_schema($with_timeout)
            }

            fn kind(&self) -> ToolKind {
                ToolKind::Execute
            }

            fn rarely_used(&self) -> bool {
                true
            }

            fn title(&self, args: &Value) -> String {
                format!("{} {}", $name, args.get("terminal_id").and_then(Value::as_str).unwrap_or(""))
            }

            fn call<'a>(&'a self, args: Value, $ctx: &'a ToolContext) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
                Box::pin(async move {
                    #[allow(unused_variables)]
                    let ($id, $parsed) = owned_terminal($name, &args, $ctx)?;
                    $body
                })
            }
        }
    };
}

terminal_tool!(
    /// Returns the output so far of a command left running.
    GetTerminalOutput, "get_terminal_output",
    "Get the output so far (and exit status, if it has exited) of a command started by run_command.",
    false,
    |id, parsed, ctx| {
        let output = ctx.workspace.terminals.output(&id).await?;
        let status = output.exit_status.as_ref().map_or("still running".to_owned(), describe_exit);
        Ok(ToolOutput::text(format!("{status}\n{}", format_output(&output))))
    }
);

terminal_tool!(
    /// Waits (up to a limit) for a command left running to exit.
    WaitForTerminalExit, "wait_for_terminal_exit",
    "Wait for a command started by run_command to exit (at most `timeout_secs`, default 60) and return its exit status and output.",
    true,
    |id, parsed, ctx| {
        let limit = Duration::from_secs(parsed.timeout_secs.unwrap_or(60));
        let terminals = &ctx.workspace.terminals;
        let waited = tokio::time::timeout(limit, terminals.wait_for_exit(&id)).await;
        let output = terminals.output(&id).await?;
        let status = match waited {
            Ok(status) => describe_exit(&status?),
            Err(_) => format!("still running after {} s", limit.as_secs()),
        };
        Ok(ToolOutput::text(format!("{status}\n{}", format_output(&output))))
    }
);

terminal_tool!(
    /// Kills a command left running; its output stays readable.
    KillTerminal, "kill_terminal",
    "Kill a command started by run_command. Its output stays available until released.",
    false,
    |id, parsed, ctx| {
        ctx.workspace.terminals.kill(&id).await?;
        Ok(ToolOutput::text(format!("killed terminal `{}`", id.0)))
    }
);

terminal_tool!(
    /// Kills (if needed) and forgets a command left running.
    ReleaseTerminal, "release_terminal",
    "Release a terminal started by run_command: kill it if still running and free its resources.",
    false,
    |id, parsed, ctx| {
        ctx.workspace.terminals.release(&id).await?;
        ctx.terminals.forget(&id);
        Ok(ToolOutput::text(format!("released terminal `{}`", id.0)))
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_with_shell_syntax_run_through_sh() {
        assert_eq!(
            program_and_args("ls -la | head", vec![]),
            (
                "sh".to_owned(),
                vec!["-c".to_owned(), "ls -la | head".to_owned()]
            )
        );
        assert_eq!(
            program_and_args("cargo", vec!["test".into()]),
            ("cargo".to_owned(), vec!["test".to_owned()])
        );
        assert_eq!(program_and_args("ls", vec![]), ("ls".to_owned(), vec![]));
    }
}
