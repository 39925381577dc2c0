//! `passthrough`: forwards every message unchanged. A placeholder while a
//! graph is being built, a join point for several inputs, and what the
//! runtime-overhead benchmark chains.

use flowrun_runtime::{BuildContext, Inputs, Node, NodeConfig, NodeContext, NodeError, OutputKind};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

/// Forwards messages unchanged; takes no settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassthroughConfig {}

impl NodeConfig for PassthroughConfig {
    const TYPE: &'static str = "passthrough";
    const DESCRIPTION: &'static str =
        "Forwards every message unchanged (merges several inputs into one output)";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::SameAsInput;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Passthrough))
    }
}

struct Passthrough;

impl Node for Passthrough {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                ctx.output.send(message).await;
            }
            Ok(())
        })
    }
}
