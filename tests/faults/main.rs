//! Faults injected with real processes between an edge broker and the
//! bucket (issue 7, scenarios 1–5): the cloud flowrun killed, the cloud
//! broker restarted, the edge↔cloud link cut, the S3 server down, the cloud
//! spec edited while faces flow. Each scenario sends 2,000 real face crops
//! at QoS 1 and checks, through the S3 API, that every one is in the bucket
//! once under its identity key; it prints one `RELIABILITY …` line with its
//! figures (bench/reliability/run.sh turns them into docs/RELIABILITY.md's
//! table).
//!
//! The scenarios run one at a time: their timings are the point, and two
//! at once on a 2-core machine would blur them.

mod rig;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowrun_test_support::flowrun::{Binary, Flowrun};
use flowrun_test_support::{crops, wait};
use rig::{Link, Rig, Sent, SENT};
use tokio::task::JoinHandle;

/// The binary under test (see `flowrun_test_support::flowrun`).
const FLOWRUN: Binary = Binary::at(env!("CARGO_BIN_EXE_flowrun"));

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the outages of scenarios 3 and 4 last.
const OUTAGE: Duration = Duration::from_secs(10);

/// The fault strikes once this many faces are stored: mid-stream.
const MID_STREAM: usize = SENT / 4;

/// No fault: what the others compare with. The stream's end is its
/// "fault end", so its recovery figures are the time to store the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s0_no_fault_stores_every_face_once() {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start(Link::Bridge, false).await;
    let cloud = rig.start_cloud(&Rig::shipped_cloud_spec(), false).await;
    let sent = rig.produce(crops::faces(FLOWRUN).await).await.unwrap();
    let recovery = rig.recovery(sent.last).await;

    let (end, clean) = cloud.stop().await;
    assert!(clean, "the cloud did not exit cleanly");
    let outcome = rig.outcome(&sent, end.state_count("store", "stored")).await;
    outcome.report("0-no-fault", rig.link, &recovery);
    assert_eq!(
        outcome.redelivered(),
        0,
        "a face was stored twice without a fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_cloud_flowrun_killed_and_restarted_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let rig = Rig::start(Link::Bridge, false).await;
    let spec = Rig::shipped_cloud_spec();
    let (cloud, producer) = rig.stream(&spec, false, MID_STREAM).await;

    let before = cloud.kill();
    let cloud = rig.start_cloud(&spec, false).await;
    let fault_end = Instant::now();
    let stored_before = before.state_count("store", "stored");
    rig.finish("1-cloud-sigkill", fault_end, cloud, producer, stored_before)
        .await;
}

/// Scenario 2 with the shipped cloud spec, through `link`.
async fn cloud_broker_restart(link: Link) {
    let spec = Rig::shipped_cloud_spec();
    cloud_broker_restart_on("2-cloud-broker-restart", &spec, link).await;
}

async fn cloud_broker_restart_on(scenario: &str, spec: &Path, link: Link) {
    let mut rig = Rig::start(link, false).await;
    let (cloud, producer) = rig.stream(spec, false, MID_STREAM).await;

    tokio::task::block_in_place(|| rig.cloud.restart());
    let fault_end = Instant::now();
    rig.finish(scenario, fault_end, cloud, producer, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_cloud_broker_restarted_loses_nothing() {
    let _serial = SERIAL.lock().await;
    cloud_broker_restart(Link::Bridge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_cloud_broker_restarted_through_the_forwarder_loses_nothing() {
    let _serial = SERIAL.lock().await;
    cloud_broker_restart(Link::Forwarder).await;
}

/// Scenario 2 with one cloud worker on a plain subscription (`faces/#`),
/// which mosquitto does restore from its persistence file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_cloud_broker_restarted_one_worker_on_a_plain_subscription_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let shared = "    share: cloud-cos\n";
    let shipped = std::fs::read_to_string(Rig::shipped_cloud_spec()).unwrap();
    assert!(
        shipped.contains(shared),
        "specs/cloud-cos.yaml no longer shares its subscription"
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("cloud-cos.yaml");
    std::fs::write(&spec, shipped.replace(shared, "")).unwrap();
    cloud_broker_restart_on("2b-cloud-broker-restart-plain-sub", &spec, Link::Bridge).await;
}

async fn link_down(link: Link) {
    let rig = Rig::start(link, true).await;
    let spec = Rig::shipped_cloud_spec();
    let (cloud, producer) = rig.stream(&spec, false, MID_STREAM).await;

    let cut = rig.cut.as_ref().unwrap();
    cut.cut();
    // The outage itself: a fixed time by definition, nothing to wait for.
    tokio::time::sleep(OUTAGE).await;
    // What reached the cloud broker before the cut is stored by now; the
    // rest waits on the edge broker.
    let during = rig.puts().len();
    assert!(
        during < SENT,
        "every face was stored while the link was down:\n{}",
        rig.link_log()
    );
    rig.cut.as_ref().unwrap().restore();
    let fault_end = Instant::now();
    rig.finish("3-link-down-10s", fault_end, cloud, producer, 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_link_down_10s_through_the_bridge_the_edge_buffers_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    link_down(Link::Bridge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_link_down_10s_through_the_forwarder_the_edge_buffers_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    link_down(Link::Forwarder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_s3_server_down_10s_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut rig = Rig::start(Link::Bridge, false).await;
    let spec = Rig::shipped_cloud_spec();
    let (cloud, producer) = rig.stream(&spec, false, MID_STREAM).await;

    rig.store.stop();
    // The outage itself: a fixed time by definition, nothing to wait for.
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(|| rig.store.resume());
    let fault_end = Instant::now();
    rig.finish("4-s3-down-10s", fault_end, cloud, producer, 0)
        .await;
}

/// Edits the shipped cloud spec gets in scenario 5: the odd ones change
/// cos_put's concurrency (16 ↔ 8), the even ones the text of an unrelated
/// heartbeat node, which the copy adds with a sink of its own.
const EDITS: u32 = 20;

fn edited_cloud_spec(edit: u32) -> String {
    let shipped = std::fs::read_to_string(Rig::shipped_cloud_spec()).unwrap();
    let concurrency = if edit.div_ceil(2) % 2 == 1 { 8 } else { 16 };
    let key = "    key: \"{topic}.{ext}\"\n";
    assert!(
        shipped.contains(key),
        "specs/cloud-cos.yaml changed its key"
    );
    let mut text = shipped.replace(key, &format!("{key}    concurrency: {concurrency}\n"));
    text.push_str(&format!(
        "  heartbeat:\n    type: generate\n    interval_ms: 1000\n    text: \"edit {}\"\n  \
         heartbeat_log:\n    type: print\n    inputs: [heartbeat]\n",
        edit / 2 * 2
    ));
    text
}

/// Saves `text` over `spec` as an editor does: a new file renamed over it.
fn save_as_an_editor(spec: &Path, text: &str) {
    let saved = spec.with_extension("yaml.swp");
    std::fs::write(&saved, text).unwrap();
    std::fs::rename(&saved, spec).unwrap();
}

/// The rig of the edit scenarios: the cloud on a watched copy of its spec,
/// faces flowing, a tenth of them stored.
async fn edit_scenario() -> (Rig, PathBuf, Flowrun, JoinHandle<Sent>) {
    let rig = Rig::start(Link::Bridge, false).await;
    let spec = rig.cloud_spec_copy();
    std::fs::write(&spec, edited_cloud_spec(0)).unwrap();
    let (cloud, producer) = rig.stream(&spec, true, SENT / 10).await;
    (rig, spec, cloud, producer)
}

/// The end of an edit scenario: every face stored, none twice.
async fn edits_lost_nothing(
    rig: &Rig,
    cloud: Flowrun,
    producer: JoinHandle<Sent>,
    fault_end: Instant,
    scenario: &str,
) {
    let outcome = rig.finish(scenario, fault_end, cloud, producer, 0).await;
    assert_eq!(
        outcome.redelivered(),
        0,
        "a reload made a face be stored twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_cloud_spec_edited_20_times_mid_stream_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (rig, spec, cloud, producer) = edit_scenario().await;
    for edit in 1..=EDITS {
        save_as_an_editor(&spec, &edited_cloud_spec(edit));
        let reloaded = |c: &Flowrun| c.lines_with("reloaded cloud-cos.yaml");
        let applied = wait::at_most(Duration::from_secs(10))
            .until_async(|| reloaded(&cloud) >= edit as usize)
            .await;
        assert!(applied, "edit {edit} was not reloaded:\n{}", cloud.log());
        // The edits' pace (20 edits over the stream), not a wait for anything.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fault_end = Instant::now();
    let during = rig.puts().len();
    assert!(during < SENT, "the stream ended before the last edit");
    edits_lost_nothing(&rig, cloud, producer, fault_end, "5-cloud-spec-edited-20x").await;
}

/// Editor autosave while faces flow: the spec saved 50 times in 5 s, the
/// content changing every 5th save (10 distinct contents). Each distinct
/// content is applied at most once, the unchanged saves not at all, the
/// last one is what runs, and every face is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_autosave_50_saves_in_5s_mid_stream_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let (rig, spec, cloud, producer) = edit_scenario().await;
    for save in 1..=50u32 {
        save_as_an_editor(&spec, &edited_cloud_spec(save.div_ceil(5)));
        // The autosave's pace, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fault_end = Instant::now();
    let applied = wait::at_most(Duration::from_secs(10))
        .until_async(|| cloud.lines_with("→ edit 10") > 0)
        .await;
    assert!(applied, "the last save was not applied:\n{}", cloud.log());
    let reloads = cloud.lines_with("reloaded cloud-cos.yaml");
    assert!(
        (1..=10).contains(&reloads),
        "{reloads} reloads for 10 distinct contents"
    );
    assert_eq!(cloud.lines_with("nothing to change"), 0);
    edits_lost_nothing(&rig, cloud, producer, fault_end, "6-autosave-50x-in-5s").await;
}
