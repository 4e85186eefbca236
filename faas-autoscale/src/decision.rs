//! The autoscaler's decisions, free of I/O: [`recommend`] for one
//! observation and [`Decider`] for the windows that keep replicas from
//! flapping.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ScalingConfig;
use crate::labels::ScaleSettings;

/// Replicas for `load` at `target` per replica (both in the unit of the
/// function's [`crate::ScaleType`]: calls in flight, calls begun per
/// second or millicores): `ceil(load / target)` within `min..=max`.
pub fn recommend(load: f64, target: u64, min: u64, max: u64) -> u64 {
    let target = target.max(1) as f64;
    let needed = if load.is_finite() && load > 0.0 {
        // A hair below whole multiples so 100.0000001 / 50 stays 2.
        let ratio = (load / target - 1e-9).ceil();
        if ratio >= u64::MAX as f64 {
            u64::MAX
        } else {
            ratio.max(0.0) as u64
        }
    } else {
        0
    };
    needed.max(min).min(max.max(min))
}

/// What the autoscaler saw of one function since its previous look.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    /// When.
    pub now: Instant,
    /// The load since the previous observation, in the unit of the
    /// function's scale type: average calls in flight (time-weighted),
    /// calls begun per second, or millicores.
    pub load: f64,
    /// How long ago the previous observation was.
    pub span: Duration,
    /// The replicas currently set.
    pub current: u64,
    /// The replicas ready to take calls.
    pub ready: u64,
    /// Calls in flight right now (held calls included).
    pub inflight: u64,
    /// How long since a call last began or ended.
    pub idle_for: Duration,
}

/// What [`Decider::decide`] concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The replicas the function should have.
    pub desired: u64,
    /// Whether the function is in panic mode.
    pub panicking: bool,
    /// Whether it is being scaled to zero for being idle.
    pub idle: bool,
    /// Average load over the panic window (the scale type's unit).
    pub load: f64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    end: Instant,
    span: Duration,
    load: f64,
}

/// One function's scaling memory: load samples, the recommendations
/// of the stable window and the panic state.
///
/// The rules, in order:
///
/// 1. a function at zero replicas stays there (a call scales it from
///    zero, not the autoscaler);
/// 2. with `scale.zero`, a function with no call in flight and none begun
///    or ended for `zero-duration` goes to zero;
/// 3. otherwise the recommendation is [`recommend`] over the average
///    load of the panic window (6s), and replicas become the
///    highest recommendation of the stable window (60s): up at once, down
///    only once the whole window agrees;
/// 4. when the panic-window average reaches `panic_threshold` times the
///    ready capacity, the function panics for a stable window: replicas
///    never go down meanwhile.
///
/// A manual scale ([`Decider::floor`]) counts as a recommendation, so it
/// holds until the stable window after it has passed with less load.
#[derive(Debug, Default)]
pub struct Decider {
    samples: VecDeque<Sample>,
    recommendations: VecDeque<(Instant, u64)>,
    panic_until: Option<Instant>,
}

impl Decider {
    /// A decider with no history.
    pub fn new() -> Self {
        Decider::default()
    }

    /// Records `replicas` set at `now` from outside (a manual scale, a
    /// scale from zero, the replicas found when the function was first
    /// seen): replicas do not go below it before a stable window passes.
    pub fn floor(&mut self, now: Instant, replicas: u64) {
        self.recommendations.push_back((now, replicas));
    }

    /// Decides the replicas for `observation` under `settings`.
    pub fn decide(&mut self, settings: &ScaleSettings, config: &ScalingConfig, observation: Observation) -> Decision {
        let now = observation.now;
        self.samples.push_back(Sample { end: now, span: observation.span, load: observation.load });
        let horizon = config.stable_window.max(config.panic_window);
        while self.samples.front().is_some_and(|s| now.saturating_duration_since(s.end) > horizon) {
            self.samples.pop_front();
        }
        let load = self.average(now, config.panic_window);
        let steady = |desired: u64| Decision { desired, panicking: false, idle: false, load };

        if observation.current == 0 {
            self.forget();
            return steady(0);
        }
        if settings.zero && observation.inflight == 0 && observation.idle_for >= settings.zero_duration {
            self.forget();
            return Decision { idle: true, ..steady(0) };
        }

        let (min, max) = (settings.min, settings.max.max(settings.min));
        let recommendation = recommend(load, settings.target, min, max);
        let capacity = (observation.ready.max(1) * settings.target) as f64;
        if load > 0.0 && load >= config.panic_threshold * capacity {
            if self.panic_until.is_none_or(|until| until <= now) {
                tracing::debug!(load, capacity, "entering panic mode");
            }
            self.panic_until = Some(now + config.stable_window);
        }
        let panicking = self.panic_until.is_some_and(|until| until > now);
        if !panicking {
            self.panic_until = None;
        }

        self.recommendations.push_back((now, recommendation));
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= config.stable_window)
        {
            self.recommendations.pop_front();
        }
        let highest = self.recommendations.iter().map(|(_, r)| *r).max().unwrap_or(recommendation);
        let mut desired = highest.clamp(min, max);
        if panicking {
            desired = desired.max(observation.current.clamp(min, max));
        }
        Decision { desired, panicking, idle: false, load }
    }

    /// Time-weighted average load over the last `window`.
    fn average(&self, now: Instant, window: Duration) -> f64 {
        let from = now.checked_sub(window);
        let (mut weighted, mut total) = (0.0, 0.0);
        for sample in &self.samples {
            let start = sample.end.checked_sub(sample.span).unwrap_or(sample.end);
            let start = match from {
                Some(from) if from > start => from,
                _ => start,
            };
            let overlap = sample.end.min(now).saturating_duration_since(start).as_secs_f64();
            if overlap > 0.0 {
                weighted += sample.load * overlap;
                total += overlap;
            }
        }
        if total > 0.0 {
            weighted / total
        } else {
            0.0
        }
    }

    fn forget(&mut self) {
        self.recommendations.clear();
        self.panic_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommendations_are_ceil_of_load_over_target_within_bounds() {
        // (load, target, min, max, expected)
        let table: &[(f64, u64, u64, u64, u64)] = &[
            (0.0, 50, 1, 20, 1),
            (1.0, 50, 1, 20, 1),
            (50.0, 50, 1, 20, 1),
            (50.5, 50, 1, 20, 2),
            (100.0, 50, 1, 20, 2),
            (1000.0, 50, 1, 20, 20),
            (1e30, 1, 1, 3, 3),
            (10.0, 1, 1, 3, 3),
            (0.5, 1, 2, 5, 2),
            (3.0, 1, 2, 5, 3),
            (f64::NAN, 10, 1, 4, 1),
            (-4.0, 10, 1, 4, 1),
            (7.0, 0, 1, 10, 7),
        ];
        for &(load, target, min, max, expected) in table {
            assert_eq!(recommend(load, target, min, max), expected, "{load} / {target} in {min}..={max}");
        }
    }

    struct Run {
        decider: Decider,
        settings: ScaleSettings,
        config: ScalingConfig,
        now: Instant,
        current: u64,
        idle_for: Duration,
    }

    impl Run {
        fn new(settings: ScaleSettings, current: u64) -> Run {
            Run {
                decider: Decider::new(),
                settings,
                config: ScalingConfig::default(),
                now: Instant::now(),
                current,
                idle_for: Duration::ZERO,
            }
        }

        /// `seconds` pass with `load` calls in flight on average;
        /// the decision is applied.
        fn step(&mut self, seconds: u64, load: f64) -> Decision {
            let span = Duration::from_secs(seconds);
            self.now += span;
            self.idle_for = if load > 0.0 { Duration::ZERO } else { self.idle_for + span };
            let observation = Observation {
                now: self.now,
                load,
                span,
                current: self.current,
                ready: self.current,
                inflight: load.ceil() as u64,
                idle_for: self.idle_for,
            };
            let decision = self.decider.decide(&self.settings, &self.config, observation);
            self.current = decision.desired;
            decision
        }
    }

    fn settings(min: u64, max: u64, target: u64, zero: bool) -> ScaleSettings {
        ScaleSettings { min, max, target, zero, zero_duration: Duration::from_secs(300), ..ScaleSettings::default() }
    }

    #[test]
    fn up_at_once_down_only_after_the_stable_window() {
        let mut run = Run::new(settings(1, 20, 10, false), 1);
        assert_eq!(run.step(2, 0.0).desired, 1);
        assert!(run.step(2, 45.0).desired > 1, "scales up on the first busy tick");
        run.step(2, 45.0);
        assert_eq!(run.step(2, 45.0).desired, 5, "ceil(45 / 10) once the panic window is full");
        let mut history = Vec::new();
        for _ in 0..40 {
            history.push(run.step(2, 0.0).desired);
        }
        assert!(history[..29].iter().all(|&d| d == 5), "holds for the stable window: {history:?}");
        assert!(history.windows(2).all(|w| w[1] <= w[0]), "only goes down once idle: {history:?}");
        assert_eq!(history.last(), Some(&1), "down to min: {history:?}");
        for _ in 0..200 {
            assert_eq!(run.step(2, 0.0).desired, 1, "never below min without scale.zero");
        }
    }

    #[test]
    fn load_above_target_stops_at_max() {
        let mut run = Run::new(settings(1, 3, 1, false), 1);
        assert_eq!(run.step(2, 10.0).desired, 3);
        assert_eq!(run.step(2, 100.0).desired, 3);
    }

    #[test]
    fn brief_dips_do_not_flap() {
        let mut run = Run::new(settings(1, 20, 10, false), 1);
        let mut seen = Vec::new();
        for i in 0..60 {
            let load = if i % 5 == 0 { 0.0 } else { 40.0 };
            seen.push(run.step(1, load).desired);
        }
        assert!(seen[6..].iter().all(|&d| d == 4), "{seen:?}");
    }

    #[test]
    fn idle_functions_go_to_zero_only_when_enabled() {
        let mut without = Run::new(settings(2, 5, 10, false), 2);
        let mut with = Run::new(settings(2, 5, 10, true), 2);
        for _ in 0..149 {
            assert_eq!(without.step(2, 0.0).desired, 2);
            assert_eq!(with.step(2, 0.0).desired, 2, "min until zero-duration has passed");
        }
        assert_eq!(without.step(2, 0.0).desired, 2);
        let decision = with.step(2, 0.0);
        assert!(decision.idle && decision.desired == 0, "{decision:?}");
        assert_eq!(with.step(2, 0.0).desired, 0, "stays at zero: a call wakes it, not the autoscaler");
        assert_eq!(with.step(2, 5.0).desired, 0, "load at zero is the cold start's business");
    }

    #[test]
    fn panic_never_scales_down() {
        // 10 replicas set, 1 ready, 25 calls in flight at target 10: the
        // load alone asks for 3, but 25 is over twice the ready capacity.
        let mut run = Run::new(settings(1, 50, 10, false), 10);
        let panicked = run.decider.decide(
            &run.settings,
            &run.config,
            Observation {
                now: run.now + Duration::from_secs(1),
                load: 25.0,
                span: Duration::from_secs(1),
                current: 10,
                ready: 1,
                inflight: 25,
                idle_for: Duration::ZERO,
            },
        );
        assert!(panicked.panicking && panicked.desired == 10, "{panicked:?}");
        let mut calm = Run::new(settings(1, 50, 10, false), 10);
        let decision = calm.step(1, 25.0);
        assert!(!decision.panicking && decision.desired == 3, "with 10 ready, 25 is no panic: {decision:?}");
    }

    #[test]
    fn a_manual_scale_is_a_floor_for_one_stable_window() {
        let mut run = Run::new(settings(1, 20, 50, false), 1);
        run.step(2, 0.0);
        run.decider.floor(run.now, 4);
        run.current = 4;
        assert_eq!(run.step(30, 0.0).desired, 4);
        assert_eq!(run.step(29, 0.0).desired, 4);
        assert_eq!(run.step(2, 0.0).desired, 1);
        run.decider.floor(run.now, 40);
        run.current = 40;
        assert_eq!(run.step(2, 0.0).desired, 20, "max still bounds a manual scale");
    }

    #[test]
    fn averages_are_time_weighted_over_the_panic_window() {
        let mut run = Run::new(settings(1, 100, 1, false), 50);
        // 60s idle, then 3s at 12: the 6s panic window averages to 6.
        run.step(60, 0.0);
        let decision = run.step(3, 12.0);
        assert!((decision.load - 6.0).abs() < 1e-9, "{decision:?}");
    }
}
