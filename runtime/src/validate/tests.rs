//! Validator rules the spec corpus under `tests/specs/bad/` cannot reach
//! through the shipped node types: payload kinds (every shipped type takes
//! any kind today), and what a plan holds after validation.
//!
//! The node types here exist only for these tests: an image source, a bytes
//! source, a detector that takes only images, a pass-through and a sink.

use std::path::Path;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::validate;
use crate::catalogue::{Catalogue, Inputs, NodeConfig, OutputKind};
use crate::diagnostic::Severity;
use crate::edge::Overflow;
use crate::message::PayloadKind;
use crate::node::{BuildContext, Node, NodeContext, NodeError};
use crate::port::OutputPort;
use crate::spec::yaml::Pos;
use crate::spec::OnFailure;

/// A kind the engine does not know, declared here the way a node crate
/// declares its own: large values, with a short default queue.
const IMAGES: PayloadKind = PayloadKind::new("images").with_queue_capacity(SHORT_QUEUE);
const SHORT_QUEUE: usize = 4;

/// Never run: these tests stop at the plan.
struct Idle;

impl Node for Idle {
    fn run(self: Box<Self>, _ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Declares a config-less test node type.
macro_rules! test_type {
    ($config:ident, $name:literal, $inputs:expr, $output:expr, $overflow:expr) => {
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        struct $config {}

        impl NodeConfig for $config {
            const TYPE: &'static str = $name;
            const DESCRIPTION: &'static str = "a test node type";
            const INPUTS: Inputs = $inputs;
            const OUTPUT: OutputKind = $output;
            const OUTPUT_OVERFLOW: Overflow = $overflow;

            fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
                Ok(Box::new(Idle))
            }
        }
    };
}

test_type!(
    ImageSource,
    "image_source",
    Inputs::None,
    OutputKind::Kind(IMAGES),
    Overflow::DropOldest
);
test_type!(
    ByteSource,
    "byte_source",
    Inputs::None,
    OutputKind::Kind(PayloadKind::Bytes),
    Overflow::Block
);
test_type!(
    Detect,
    "detect",
    Inputs::Only(&[IMAGES]),
    OutputKind::Kind(IMAGES),
    Overflow::Block
);
test_type!(
    Relay,
    "relay",
    Inputs::Any,
    OutputKind::SameAsInput,
    Overflow::Block
);
test_type!(Sink, "sink", Inputs::Any, OutputKind::None, Overflow::Block);

/// A sink that sends what it refuses on a named port, as `cos_put` does.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Store {}

impl NodeConfig for Store {
    const TYPE: &'static str = "store";
    const DESCRIPTION: &'static str = "a test sink with a port";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;
    const PORTS: &'static [OutputPort] = &[OutputPort {
        name: "refused",
        kind: OutputKind::SameAsInput,
        description: "what it refuses",
    }];

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Idle))
    }
}

fn catalogue() -> Catalogue {
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<ImageSource>()
        .register::<ByteSource>()
        .register::<Detect>()
        .register::<Relay>()
        .register::<Sink>()
        .register::<Store>();
    catalogue
}

fn check(text: &str) -> super::Checked {
    validate(Path::new("t.yaml"), text, &catalogue(), &|_| None)
}

/// Every diagnostic as the CLI prints it.
fn rendered(checked: &super::Checked) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_type_left_out_of_this_build_says_why_instead_of_unknown() {
    let mut slim = catalogue();
    slim.leave_out("camera", "it was built without the `vision` feature");
    assert!(slim.get("camera").is_none());
    assert_eq!(
        slim.left_out().collect::<Vec<_>>(),
        [("camera", "it was built without the `vision` feature")]
    );
    let checked = validate(
        Path::new("t.yaml"),
        "version: 1
nodes:
  cam: {type: camera}
  out: {type: sink, inputs: [cam]}
",
        &slim,
        &|_| None,
    );
    assert!(checked.plan.is_none());
    assert_eq!(
        rendered(&checked),
        [
            "t.yaml:3:15: error: node type `camera` is not in this build of flowrun\n  \
          hint: it was built without the `vision` feature"
        ]
    );
}

#[test]
fn an_input_of_the_wrong_kind_names_both_nodes_and_both_kinds() {
    let checked = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  found: {type: detect, inputs: [raw]}
  out: {type: sink, inputs: [found]}
",
    );
    assert!(checked.plan.is_none());
    assert_eq!(
        rendered(&checked),
        ["t.yaml:4:34: error: node `found` (detect) cannot take bytes from `raw`: it takes images\n  \
          hint: does `raw` give what `found` needs? `flowrun nodes` shows each type's input and output"]
    );
}

#[test]
fn a_pass_through_carries_its_input_kind_to_the_next_check() {
    let bytes_through_relay = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  hop: {type: relay, inputs: [raw]}
  found: {type: detect, inputs: [hop]}
  out: {type: sink, inputs: [found]}
",
    );
    let messages = rendered(&bytes_through_relay);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0]
            .starts_with("t.yaml:5:34: error: node `found` (detect) cannot take bytes from `hop`"),
        "{messages:#?}"
    );

    let images_through_relay = check(
        "version: 1
nodes:
  cam: {type: image_source}
  hop: {type: relay, inputs: [cam]}
  found: {type: detect, inputs: [hop]}
  out: {type: sink, inputs: [found]}
",
    );
    assert!(images_through_relay.diagnostics.is_empty());
    let plan = images_through_relay
        .plan
        .expect("a valid spec gives a plan");
    let hop = plan.node("hop").expect("hop is planned");
    assert_eq!(hop.output_kind, Some(IMAGES));
}

#[test]
fn every_kind_mismatch_is_reported_at_once() {
    let checked = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  a: {type: detect, inputs: [raw]}
  b: {type: detect, inputs: [raw]}
  out: {type: sink, inputs: [a, b]}
",
    );
    let messages = rendered(&checked);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].contains("node `a` (detect) cannot take bytes from `raw`"));
    assert!(messages[1].contains("node `b` (detect) cannot take bytes from `raw`"));
}

#[test]
fn a_plan_holds_nodes_in_order_with_queue_defaults_and_overrides() {
    let checked = check(
        "version: 1
name: shape
nodes:
  out:
    type: sink
    on_failure: stop
    inputs:
      - found
      - {from: cam, capacity: 2, overflow: block}
  found: {type: detect, inputs: [cam]}
  cam: {type: image_source}
",
    );
    assert!(checked.diagnostics.is_empty(), "{:#?}", rendered(&checked));
    let plan = checked.plan.expect("a valid spec gives a plan");
    assert_eq!(plan.name, "shape");
    let order: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        order,
        ["cam", "found", "out"],
        "every node after its inputs"
    );
    let found = plan.node("found").expect("found is planned");
    // A live source's edges drop old images unless the input says otherwise.
    assert_eq!(found.inputs[0].overflow, Overflow::DropOldest);
    // Images are large: their queues are short unless the input says otherwise.
    assert_eq!(found.inputs[0].capacity, SHORT_QUEUE);
    assert_eq!(found.on_failure, OnFailure::Restart);
    let out = plan.node("out").expect("out is planned");
    assert_eq!(out.on_failure, OnFailure::Stop);
    assert_eq!(out.inputs[0].overflow, Overflow::Block);
    assert_eq!(out.inputs[0].capacity, SHORT_QUEUE);
    assert_eq!(out.inputs[1].capacity, 2);
    assert_eq!(out.inputs[1].overflow, Overflow::Block);
}

#[test]
fn the_name_defaults_to_the_file_stem() {
    let checked = validate(
        Path::new("dir/edge-bridge.yaml"),
        "version: 1\nnodes:\n  cam: {type: image_source}\n  out: {type: sink, inputs: [cam]}\n",
        &catalogue(),
        &|_| None,
    );
    assert_eq!(checked.plan.expect("valid").name, "edge-bridge");
}

#[test]
fn warnings_keep_the_plan_and_errors_drop_it() {
    let warned = check("version: 1\nnodes:\n  cam: {type: image_source}\n");
    assert!(warned.plan.is_some());
    assert_eq!(warned.warnings().count(), 1);
    assert_eq!(warned.diagnostics[0].severity, Severity::Warning);

    let failed = check("version: 1\nnodes:\n  cam: {type: image_source, fps: 3}\n");
    assert!(failed.plan.is_none());
    assert_eq!(failed.errors().count(), 1);
}

#[test]
fn diagnostics_come_in_file_order() {
    let checked = check(
        "version: 1
bogus: 1
nodes:
  b: {type: sink, inputs: [nope]}
  a: {type: nosuch}
",
    );
    let positions: Vec<Pos> = checked.diagnostics.iter().map(|d| d.pos).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    assert_eq!(checked.errors().count(), 3, "{:#?}", rendered(&checked));
}

#[test]
fn variables_come_from_the_given_lookup() {
    let text = "version: 1
nodes:
  cam: {type: image_source}
  out: {type: sink, inputs: [\"${FEED}\"]}
";
    let with = validate(Path::new("t.yaml"), text, &catalogue(), &|name| {
        (name == "FEED").then(|| "cam".to_owned())
    });
    assert!(with.diagnostics.is_empty(), "{:#?}", rendered(&with));
    let without = check(text);
    assert_eq!(
        rendered(&without),
        [
            "t.yaml:4:30: error: environment variable `FEED` is not set\n  \
          hint: export FEED=…, or give a default: ${FEED:-value}"
        ]
    );
}

#[test]
fn an_input_of_a_node_that_failed_its_own_checks_is_not_called_missing() {
    // `cam` has a typo in its config; `out` still names a real node, so the
    // one typo must give one error, not a second "not a node" one.
    let checked = check(
        "version: 1
nodes:
  cam: {type: image_source, fsp: 3}
  out: {type: sink, inputs: [cam]}
",
    );
    let messages = rendered(&checked);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].contains("unknown key `fsp` for node type `image_source`"));
}

#[test]
fn a_bad_input_does_not_also_warn_about_the_shape() {
    let checked = check(
        "version: 1
nodes:
  cam: {type: image_source}
  out:
    type: sink
    inputs:
      - {from: cam, overflow: drop_newest}
",
    );
    let messages = rendered(&checked);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].starts_with(
            "t.yaml:7:31: error: bad input of node `out`: unknown variant `drop_newest`"
        ),
        "{messages:#?}"
    );
}

#[test]
fn a_named_port_is_planned_with_its_kind_and_checked_per_port() {
    let checked = check(
        "version: 1
nodes:
  cam: {type: image_source}
  keep: {type: store, inputs: [cam]}
  again: {type: detect, inputs: [keep.refused]}
  out: {type: sink, inputs: [again]}
",
    );
    assert!(checked.diagnostics.is_empty(), "{:#?}", rendered(&checked));
    let plan = checked.plan.expect("a valid spec gives a plan");
    let again = plan.node("again").expect("again is planned");
    assert_eq!(again.inputs[0].from, "keep");
    assert_eq!(again.inputs[0].port.as_deref(), Some("refused"));
    assert_eq!(again.inputs[0].source().to_string(), "keep.refused");
    // The port passes on what its node was given: images, so their short queue.
    let keep = plan.node("keep").expect("keep is planned");
    assert_eq!(keep.kind_of(Some("refused")), Some(IMAGES));
    assert_eq!(keep.kind_of(None), None);
    assert_eq!(again.inputs[0].capacity, SHORT_QUEUE);

    let bytes = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  keep: {type: store, inputs: [raw]}
  again: {type: detect, inputs: [keep.refused]}
  out: {type: sink, inputs: [again]}
",
    );
    assert_eq!(
        rendered(&bytes),
        ["t.yaml:5:34: error: node `again` (detect) cannot take bytes from `keep.refused`: it takes images\n  \
          hint: does `keep.refused` give what `again` needs? `flowrun nodes` shows each type's input and output"]
    );
}

#[test]
fn an_unknown_port_is_located_and_lists_the_ports_the_node_has() {
    let checked = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  keep: {type: store, inputs: [raw]}
  out: {type: sink, inputs: [keep.refsed, raw.refused]}
",
    );
    assert!(checked.plan.is_none());
    assert_eq!(
        rendered(&checked),
        [
            "t.yaml:5:30: error: node `out` takes input from `keep.refsed`, but node `keep` (store) has no output `refsed`\n  \
          hint: did you mean `keep.refused`? does node `keep` declare output `refsed`? it has: refused",
            "t.yaml:5:43: error: node `out` takes input from `raw.refused`, but node `raw` (byte_source) has no output `refused`\n  \
          hint: does node `raw` declare output `refused`? it has only its default output (`flowrun nodes byte_source` lists its outputs)",
        ]
    );
}

#[test]
fn a_node_may_take_both_the_default_output_and_a_port_of_another() {
    let checked = check(
        "version: 1
nodes:
  raw: {type: byte_source}
  hop: {type: relay, inputs: [raw]}
  keep: {type: store, inputs: [hop]}
  out: {type: sink, inputs: [hop, keep.refused, {from: keep.refused, capacity: 2}]}
",
    );
    assert_eq!(
        rendered(&checked),
        ["t.yaml:6:49: error: node `out` lists input `keep.refused` twice"]
    );
}
