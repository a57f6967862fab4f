//! The configuration reference (`docs/configuration.md`), generated from the clap model so it cannot drift.

use std::fmt::Write as _;

use clap::{Arg, Command, CommandFactory};

use super::Cli;

/// The command that rewrites `docs/configuration.md` from the code.
pub const REGENERATE_COMMAND: &str = "K8UP_REGENERATE_DOCS=1 cargo test --workspace --test cli";

/// Render every flag of every subcommand (long and short names, aliases, env var, default, description),
/// grouped by subcommand and help heading, as Markdown.
pub fn config_reference_markdown() -> String {
    let cli = Cli::command();
    let mut out = String::new();
    out.push_str("# Configuration reference\n\n");
    let _ = writeln!(
        out,
        "<!-- Generated from the clap model by `k8up::cli::config_reference_markdown()`. Do not edit; \
         regenerate with `{REGENERATE_COMMAND}`. -->\n"
    );
    out.push_str(
        "Every flag can also be set through its environment variable; a flag given on the command line wins \
         over the environment. Boolean variables accept `true`/`false`, `yes`/`no`, `on`/`off` and `1`/`0`; \
         boolean flags also take `--flag=false`. Empty environment variables count as unset. Values of \
         secret settings are never printed (`--help`, logs and `--check-config` show `***`).\n\n",
    );

    out.push_str("## Global flags\n\nAccepted before or after any subcommand.\n\n");
    let globals: Vec<&Arg> = cli
        .get_arguments()
        .filter(|a| a.is_global_set() && documented(a))
        .collect();
    table(&mut out, &globals);

    for sub in cli.get_subcommands() {
        subcommand(&mut out, "k8up", sub);
    }
    out
}

/// One section per subcommand, nested ones (`k8up plugin inspect`) after their parent.
fn subcommand(out: &mut String, parent: &str, sub: &Command) {
    let path = format!("{parent} {}", sub.get_name());
    let _ = writeln!(out, "## `{path}`\n");
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        let _ = writeln!(out, "{about}\n");
    }
    let mut args: Vec<&Arg> = sub.get_arguments().filter(|a| documented(a)).collect();
    // `--help` order: `Command::mut_arg` (e.g. making a shared flag required) moves an argument to the end of
    // the list but keeps its display order. Positionals have none and stay first.
    args.sort_by_key(|a| (!a.is_positional(), a.get_display_order()));
    let nested: Vec<&Command> = sub.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if args.is_empty() {
        if nested.is_empty() {
            out.push_str("No flags.\n\n");
        }
        for child in nested {
            subcommand(out, &path, child);
        }
        return;
    }
    let mut headings: Vec<Option<&str>> = Vec::new();
    for arg in &args {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    for heading in headings {
        let group: Vec<&Arg> = args
            .iter()
            .copied()
            .filter(|a| a.get_help_heading() == heading)
            .collect();
        let _ = writeln!(out, "### {}\n", heading.unwrap_or("Options"));
        table(out, &group);
    }
    for child in nested {
        subcommand(out, &path, child);
    }
}

/// clap's own `--help`/`--version` are not configuration.
fn documented(arg: &Arg) -> bool {
    !matches!(arg.get_id().as_str(), "help" | "version")
}

fn table(out: &mut String, args: &[&Arg]) {
    out.push_str("| Flag | Environment | Default | Description |\n|---|---|---|---|\n");
    for arg in args {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            names(arg),
            arg.get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default(),
            default(arg),
            description(arg),
        );
    }
    out.push('\n');
}

fn names(arg: &Arg) -> String {
    let mut names: Vec<String> = Vec::new();
    if let Some(long) = arg.get_long() {
        names.push(format!("`--{long}`"));
    }
    if let Some(short) = arg.get_short() {
        names.push(format!("`-{short}`"));
    }
    for alias in arg.get_visible_aliases().unwrap_or_default() {
        names.push(format!("`--{alias}`"));
    }
    if names.is_empty() {
        names.push(format!("`<{}>`", arg.get_id()));
    }
    names.join(", ")
}

fn default(arg: &Arg) -> String {
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if defaults.is_empty() {
        String::new()
    } else {
        format!("`{}`", defaults.join(","))
    }
}

fn description(arg: &Arg) -> String {
    let mut text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    // Boolean flags list true/false as possible values; that is said once in the preamble.
    // clap drops the final period of one-sentence doc comments; the table reads better with it.
    if !text.is_empty() && !text.ends_with(['.', ')', ':']) {
        text.push('.');
    }
    if !values.is_empty() && values != ["`true`", "`false`"] {
        let _ = write!(text, " Values: {}.", values.join(", "));
    }
    if arg.is_hide_set() {
        text.push_str(" *(Not shown in `--help`.)*");
    }
    text
}
