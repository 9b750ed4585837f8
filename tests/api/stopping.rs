//! The harness stops the whole host, not only its first process: `spin up` runs its trigger as
//! a child (`spin trigger http`), which a `SIGKILL` of `spin up` alone leaves running, holding
//! its port and state dir. Every test and bench run would leak one.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api_tests::{processes_in_group, spawn_app};

#[tokio::test]
async fn dropping_an_app_leaves_no_process_of_its_group_behind() {
    let app = spawn_app().await;
    let group = app.process_group();
    // Under real Spin the group already holds `spin up` and its trigger. The local host is one
    // process, so stand in for the trigger: a child in the host's group that only a signal to
    // the whole group reaches.
    let mut stand_in = Command::new("sleep")
        .arg("600")
        .process_group(i32::try_from(group).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        processes_in_group(group).len() >= 2,
        "the host and the stand-in share a process group"
    );

    drop(app);

    // The stand-in is ours to reap; it must have been killed with the group.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stand_in.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "a process of the app's group survived its drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Whatever else was in the group (Spin's trigger) is reaped by init; nothing is left.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_in_group(group);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes {left:?} of the app's group {group} are still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
