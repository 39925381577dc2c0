//! The `flowrun` command: the one place that links the engine
//! (`flowrun-runtime`) with the node catalogue (`flowrun-nodes`).

// The command takes nothing on trust from a spec, a broker or a store:
// no `unwrap`/`expect` outside the tests, which unwrap by design.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod connect;
mod health;
mod logs;
mod nodes_doc;
mod publish;
mod run;
mod subscribe;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use flowrun_runtime::runner::plural;
use flowrun_runtime::spec::interpolate::referenced_variables;
use flowrun_runtime::{load, load_shape, Catalogue};
use run::RunArgs;

/// The version, and whether this build has the vision node types (OpenCV):
/// the cloud image's does not.
const VERSION: &str = if cfg!(feature = "vision") {
    concat!(env!("CARGO_PKG_VERSION"), " (with vision: OpenCV)")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " (without vision)")
};

/// Runs YAML graphs of nodes: camera → face detection → MQTT → object
/// storage pipelines, with hot reload of the spec.
///
/// `flowrun SPEC` is short for `flowrun run SPEC`.
#[derive(Parser)]
#[command(
    version = VERSION,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a spec until its sources end or SIGINT/SIGTERM; reload it when the file changes.
    Run {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Check specs and report every problem as file:line:column; exit 1 on any error.
    Check {
        /// Spec files to check.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Show what a reload from OLD to NEW would change, node by node, without running anything.
    Diff {
        /// The spec as it runs now.
        old: PathBuf,
        /// The spec as edited.
        new: PathBuf,
    },
    /// Print the graph of one spec, or of several drawn as one system
    /// (Mermaid by default, or Graphviz dot): brokers and buckets are drawn
    /// with the topics and QoS on the links to them.
    Graph {
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// List node types: what each does, what it takes and gives, its config keys.
    Nodes {
        /// Show only this node type.
        node_type: Option<String>,
    },
    /// Print the JSON Schema of a spec (what schemas/flowrun.schema.json holds).
    Schema,
    /// Publish a file or a text to an MQTT broker; exit 0 only if the broker acknowledged it.
    Publish(publish::PublishArgs),
    /// Serve a page of the most recent objects a spec's cos_put node stored
    /// (S3 backend), shown through presigned links: where are my faces?
    Gallery {
        /// The spec (a cloud spec with a `cos_put` node on the `s3` backend).
        spec: PathBuf,
        /// The cos_put node to show, when the spec has several.
        #[arg(long)]
        node: Option<String>,
        /// Where to serve the page (a bare port means loopback).
        #[arg(long, value_name = "ADDR", value_parser = metrics_address, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        /// How many of the most recent objects to show.
        #[arg(long, default_value_t = 60)]
        count: usize,
        /// Minutes a presigned link stays valid.
        #[arg(long, default_value_t = 15)]
        expires_min: u64,
    },
    /// Print what arrives on MQTT topic filters (topic, size, QoS, properties); optionally save payloads.
    Subscribe(subscribe::SubscribeArgs),
    /// Ask a running flowrun's /healthz whether every node is up: exit 0, or 1 naming those down
    /// (a container's HEALTHCHECK).
    Health(health::HealthArgs),
}

/// A bare port binds to loopback: serving metrics to other machines
/// should be spelled out (`0.0.0.0:9464`).
fn metrics_address(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        anyhow::anyhow!("`{text}` is neither a port nor an address like 127.0.0.1:9464")
    })
}

#[derive(Args)]
struct LogArgs {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty, global = true)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

fn main() -> ExitCode {
    if let Some(code) = mistyped_command() {
        return code;
    }
    let cli = Cli::parse();
    let catalogue = flowrun_nodes::catalogue();
    let result = match cli.command {
        None => run::run(cli.run, cli.log, catalogue),
        Some(Command::Run { run: args, log }) => run::run(args, log, catalogue),
        Some(Command::Check { specs }) => Ok(check(&specs, &catalogue)),
        Some(Command::Diff { old, new }) => diff(&old, &new, &catalogue),
        Some(Command::Graph { specs, format }) => graph(&specs, format, &catalogue),
        Some(Command::Nodes { node_type }) => nodes_doc::print(&catalogue, node_type.as_deref()),
        Some(Command::Schema) => schema(&catalogue),
        Some(Command::Publish(args)) => publish::run(args),
        Some(Command::Subscribe(args)) => subscribe::run(args),
        Some(Command::Health(args)) => health::run(args),
        Some(Command::Gallery {
            spec,
            node,
            listen,
            count,
            expires_min,
        }) => gallery(
            &spec,
            node.as_deref(),
            listen,
            count,
            expires_min,
            &catalogue,
        ),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flowrun: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `flowrun chek spec.yaml` would otherwise be read as `flowrun run chek`
/// with a stray argument, and clap would answer about `<SPEC>`. A first word
/// that is no command, no option and no file is a mistyped command: say so,
/// with the nearest command.
fn mistyped_command() -> Option<ExitCode> {
    use clap::CommandFactory;
    let word = std::env::args().nth(1)?;
    if word.starts_with('-') || word.contains(['/', '.']) || Path::new(&word).exists() {
        return None;
    }
    let command = Cli::command();
    let names: Vec<&str> = command
        .get_subcommands()
        .map(|c| c.get_name())
        .chain(["help"])
        .collect();
    if names.contains(&word.as_str()) {
        return None;
    }
    let hint = match flowrun_runtime::diagnostic::closest(&word, names.iter().copied()) {
        Some(best) => format!("did you mean `flowrun {best}`?"),
        None => format!("the commands are {}", names.join(", ")),
    };
    eprintln!(
        "flowrun: `{word}` is neither a command nor a spec file\n  hint: {hint} (`flowrun --help` says more)"
    );
    Some(ExitCode::from(2))
}

fn check(specs: &[PathBuf], catalogue: &Catalogue) -> ExitCode {
    let mut failed = false;
    for path in specs {
        let checked = load(path, catalogue);
        for d in &checked.diagnostics {
            eprintln!("{d}");
        }
        let errors = checked.errors().count();
        let warnings = checked.warnings().count();
        match &checked.plan {
            Some(plan) => {
                let edges: usize = plan.nodes.iter().map(|n| n.inputs.len()).sum();
                let mut variables = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|text| flowrun_runtime::spec::yaml::parse(&text).ok())
                    .map(|root| referenced_variables(&root))
                    .unwrap_or_default();
                // And what nodes read by themselves (S3 keys by name).
                for node in &plan.nodes {
                    for var in node.built.environment() {
                        if !variables.contains(&var.name) {
                            variables.push(var.name);
                        }
                    }
                }
                let mut line = format!(
                    "{}: ok: `{}`, {}, {}",
                    path.display(),
                    plan.name,
                    plural(plan.nodes.len(), "node"),
                    plural(edges, "edge")
                );
                if warnings > 0 {
                    line.push_str(&format!(", {}", plural(warnings, "warning")));
                }
                if !variables.is_empty() {
                    line.push_str(&format!("; reads {}", variables.join(", ")));
                }
                println!("{line}");
            }
            None => {
                failed = true;
                // The graph's shape (nodes that reach no sink, nodes fed
                // by nothing) is judged only once every node makes sense:
                // "0 warnings" would claim it was.
                eprintln!(
                    "{}: {}, {}; the graph's shape is checked once the errors are fixed",
                    path.display(),
                    plural(errors, "error"),
                    plural(warnings, "warning")
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What `flowrun run OLD` would do when OLD is saved as NEW: the reload
/// plan, printed as the reload itself would log it. Exit 1 if either spec
/// is invalid (with its errors), as a reload of it would be refused.
fn diff(
    old: &std::path::Path,
    new: &std::path::Path,
    catalogue: &Catalogue,
) -> anyhow::Result<ExitCode> {
    let mut plans = Vec::new();
    for path in [old, new] {
        let checked = load_shape(path, catalogue);
        for d in checked.errors() {
            eprintln!("{d}");
        }
        match checked.plan {
            Some(plan) => plans.push(plan),
            None => {
                eprintln!(
                    "{}: invalid: a reload to it would be refused",
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let d = flowrun_runtime::diff::diff(&plans[0], &plans[1]);
    if d.is_empty() {
        println!("nothing to change");
    } else {
        let report = flowrun_runtime::ReloadReport {
            diff: d,
            ..Default::default()
        };
        println!("{}", report.summary());
        for line in report.details() {
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn graph(
    specs: &[PathBuf],
    format: GraphFormat,
    catalogue: &Catalogue,
) -> anyhow::Result<ExitCode> {
    let mut plans = Vec::new();
    for spec in specs {
        let checked = load_shape(spec, catalogue);
        for d in &checked.diagnostics {
            eprintln!("{d}");
        }
        match checked.plan {
            Some(plan) => plans.push(plan),
            None => return Ok(ExitCode::FAILURE),
        }
    }
    match format {
        GraphFormat::Mermaid => print!("{}", flowrun_runtime::graph::mermaid(&plans)),
        GraphFormat::Dot => print!("{}", flowrun_runtime::graph::dot(&plans)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `flowrun gallery`: finds the spec's `cos_put` node and serves its
/// bucket's most recent objects until Ctrl-C.
fn gallery(
    spec: &std::path::Path,
    node: Option<&str>,
    listen: SocketAddr,
    count: usize,
    expires_min: u64,
    catalogue: &Catalogue,
) -> anyhow::Result<ExitCode> {
    logs::init(LogFormat::Pretty);
    let checked = load(spec, catalogue);
    for d in &checked.diagnostics {
        eprintln!("{d}");
    }
    let Some(plan) = checked.plan else {
        return Ok(ExitCode::FAILURE);
    };
    let stores: Vec<_> = plan
        .nodes
        .iter()
        .filter(|n| n.node_type.name == "cos_put" && node.is_none_or(|id| n.id == id))
        .collect();
    let store = match stores.as_slice() {
        [one] => *one,
        [] => anyhow::bail!(
            "{} has no cos_put node{}",
            spec.display(),
            node.map(|id| format!(" `{id}`")).unwrap_or_default()
        ),
        _ => anyhow::bail!(
            "{} has several cos_put nodes: say which with --node",
            spec.display()
        ),
    };
    let settings = flowrun_nodes::cos_put::gallery::GallerySettings {
        count,
        expires: Duration::from_secs(expires_min.max(1) * 60),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (bound, task) =
            flowrun_nodes::cos_put::gallery::serve(&store.config, listen, settings).await?;
        eprintln!(
            "gallery of `{}`: http://{bound}/ (the {count} most recent objects; Ctrl-C stops it)",
            store.id
        );
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = task => {}
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn schema(catalogue: &Catalogue) -> anyhow::Result<ExitCode> {
    let schema = flowrun_runtime::schema::spec_schema(catalogue);
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bare_metrics_port_binds_to_loopback() {
        assert_eq!(
            super::metrics_address("9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(
            super::metrics_address("0.0.0.0:9464").unwrap().to_string(),
            "0.0.0.0:9464"
        );
        assert!(super::metrics_address("metrics.example.com").is_err());
    }
}
