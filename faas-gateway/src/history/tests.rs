use super::*;

fn status(name: &str, replicas: u64, ready: u64) -> FunctionStatus {
    let mut status = FunctionStatus::from_deployment(&faas_core::FunctionDeployment {
        service: name.to_owned(),
        image: "local".to_owned(),
        ..Default::default()
    });
    status.namespace = DEFAULT_NAMESPACE.to_owned();
    status.replicas = replicas;
    status.available_replicas = ready;
    status
}

#[test]
fn a_series_has_one_point_per_pass_with_calls_and_replicas() {
    let history = History::new(None);
    let f = FunctionRef::new("echo", DEFAULT_NAMESPACE);
    let pass = history.begin_pass();
    history.sample(pass, DEFAULT_NAMESPACE, &[status("echo", 1, 0)]);
    for _ in 0..9 {
        history.record(&f, 200, Duration::from_millis(10));
    }
    history.record(&f, 502, Duration::from_millis(10));
    let pass = history.begin_pass();
    history.sample(pass, DEFAULT_NAMESPACE, &[status("echo", 2, 2)]);
    let pass = history.begin_pass();
    history.sample(pass, DEFAULT_NAMESPACE, &[status("echo", 2, 2)]);

    let series = history.series(&f).unwrap();
    assert_eq!(series.samples.len(), 3);
    let calls: Vec<u32> = series.samples.iter().map(|p| p.calls).collect();
    assert_eq!(calls, [0, 10, 0]);
    assert_eq!(series.samples[1].errors, 1);
    let p50 = series.samples[1].p50_ms.unwrap();
    assert!((10.0..12.6).contains(&p50), "{p50}");
    assert_eq!(series.samples[0].p50_ms, None);
    let replicas: Vec<(u32, u32)> = series.samples.iter().map(|p| (p.replicas_desired, p.replicas_ready)).collect();
    assert_eq!(replicas, [(1, 0), (2, 2), (2, 2)]);

    let summary = &history.summaries(DEFAULT_NAMESPACE)[0];
    assert_eq!((summary.name.as_str(), summary.calls, summary.errors), ("echo", 10, 1));
    assert!(summary.last_call.is_some() && summary.p99_ms.is_some(), "{summary:?}");
}

#[test]
fn the_window_keeps_fifteen_minutes_and_unlisted_functions_are_forgotten() {
    let history = History::new(None);
    let f = FunctionRef::new("busy", DEFAULT_NAMESPACE);
    for _ in 0..PASSES + 20 {
        history.record(&f, 200, Duration::from_millis(1));
        let pass = history.begin_pass();
        history.sample(pass, DEFAULT_NAMESPACE, &[status("busy", 1, 1)]);
    }
    let series = history.series(&f).unwrap();
    assert_eq!(series.samples.len(), PASSES as usize);
    assert!(series.samples.iter().all(|p| p.calls == 1), "every pass kept had one call");
    let entry = history.existing(&f).unwrap();
    assert_eq!(entry.lock().samples.capacity(), PASSES as usize, "a full window holds exactly its samples");
    let pass = history.begin_pass();
    history.sample(pass, "other", &[]);
    assert!(history.series(&f).is_some(), "another namespace's listing leaves it alone");
    history.sample(pass, DEFAULT_NAMESPACE, &[]);
    assert!(history.series(&f).is_none() && history.is_empty());
}
