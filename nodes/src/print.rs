//! `print`: writes one JSON line per message to standard output — for
//! looking at what flows, and for scripts that read a pipeline's output.

use std::io::Write;

use flowrun_runtime::{
    BuildContext, Inputs, Message, Node, NodeConfig, NodeContext, NodeError, OutputKind, Payload,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

/// Prints `{"meta": {...}, "size": N}` for each message on standard output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrintConfig {
    /// Also print the payload as text (lossy UTF-8), cut to this many bytes. 0 prints none.
    #[serde(default)]
    pub payload_bytes: usize,
}

impl NodeConfig for PrintConfig {
    const TYPE: &'static str = "print";
    const DESCRIPTION: &'static str =
        "Writes one JSON line per message (metadata, size) to standard output";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Print {
            config: self.clone(),
        }))
    }
}

struct Print {
    config: PrintConfig,
}

fn line(message: &Message, payload_bytes: usize) -> String {
    let mut object = serde_json::json!({
        "meta": message.meta,
        "size": message.payload.len(),
        "kind": message.payload.kind(),
    });
    if let (Payload::Bytes(bytes), true) = (&message.payload, payload_bytes > 0) {
        let cut = &bytes[..bytes.len().min(payload_bytes)];
        object["payload"] = String::from_utf8_lossy(cut).into_owned().into();
    }
    object.to_string()
}

impl Node for Print {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                let text = line(&message, self.config.payload_bytes);
                // A line at a time, flushed, so a reader sees each message as it passes.
                let written = {
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "{text}").and_then(|_| stdout.flush())
                };
                match written {
                    Ok(()) => message.ack(),
                    Err(error) => {
                        message.fail(format!("cannot write to standard output: {error}"));
                        return Err(error.into());
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use flowrun_runtime::Metadata;

    #[test]
    fn prints_metadata_size_and_cut_payload() {
        let mut meta = Metadata::new();
        meta.insert("seq".into(), 7i64.into());
        let message = Message::new(Payload::Bytes(Bytes::from_static(b"hello world")), meta);
        let printed: serde_json::Value = serde_json::from_str(&line(&message, 5)).unwrap();
        assert_eq!(
            printed,
            serde_json::json!({"meta": {"seq": 7}, "size": 11, "kind": "bytes", "payload": "hello"})
        );
        message.ack();
    }
}
