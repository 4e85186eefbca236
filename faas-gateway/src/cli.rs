//! The command line, with OpenFaaS's environment variables as fallbacks.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{ArgAction, Parser, ValueEnum};
use faas_autoscale::{ScaleType, ScalingConfig};

use crate::error::GatewayError;
use crate::{providers, settings};
use faas_core::duration;
use faas_core::settings::{Kind, Setting, Unset};

/// `faas-gateway`'s flags. Every flag can also be set by the environment
/// variable named in its help; the OpenFaaS ones (`read_timeout`,
/// `write_timeout`, `basic_auth`, `secret_mount_path`) keep OpenFaaS's
/// spelling so existing deployments configure this gateway unchanged.
#[derive(Debug, Clone, Parser)]
#[command(name = "faas-gateway", version, about = "Serves the OpenFaaS-compatible API over the provider compiled in",
          after_long_help = providers::settings_help())]
pub struct Args {
    /// Address to listen on (`host:port`; port 0 picks a free one). The bound
    /// address is printed on stdout as `listening on <addr>`.
    #[arg(long, env = "FAAS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Where the local provider keeps its deployments, secrets and lock
    /// (and the embedded asynchronous queue its `async` directory):
    /// [`settings::STATE_DIR`], whose help this flag shows.
    #[arg(long, env = settings::STATE_DIR.name, help = help(&settings::STATE_DIR))]
    pub state_dir: Option<PathBuf>,

    /// The local provider's sandbox for function processes:
    /// [`settings::SANDBOX`], whose words, default and help this flag takes.
    #[arg(long, env = settings::SANDBOX.name, default_value = settings::SANDBOX.default_text(),
          help = help(&settings::SANDBOX), value_parser = PossibleValuesParser::new(settings::SANDBOX.kind.words()))]
    pub sandbox: String,

    /// Which of the providers compiled into this build to serve. Default:
    /// the only non-local one when several are compiled in, else `local`.
    #[arg(long, env = "FAAS_PROVIDER", value_parser = PossibleValuesParser::new(providers::compiled_in().iter().map(|p| p.name)))]
    pub provider: Option<String>,

    /// How long a client may take to send a request's headers (HTTP/1)
    /// before the connection is closed; `0` disables the limit. Seconds or a
    /// duration (`10s`, `1m`).
    #[arg(long, env = "read_timeout", default_value = "10s", value_parser = duration::parse)]
    pub read_timeout: Duration,

    /// The largest request body of a synchronous call (`/function/...`; 413
    /// beyond, before the function is called when the length is declared):
    /// bytes, or a number with `KiB`, `MiB` or `GiB`.
    #[arg(long, env = "FAAS_MAX_BODY", default_value = "64MiB", value_parser = parse_bytes)]
    pub max_body: u64,

    /// The largest request head (request line and headers) a client may
    /// send; 431 beyond. Bytes or `KiB`/`MiB`; at least 8KiB.
    #[arg(long, env = "FAAS_MAX_HEADER_SIZE", default_value = "64KiB", value_parser = parse_header_size)]
    pub max_header_size: u64,

    /// The most client connections open at once; beyond it new connections
    /// wait in the listen backlog until one closes.
    #[arg(long, env = "FAAS_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Threads serving client connections, each with its own
    /// single-threaded runtime: a connection, and the calls it makes to
    /// function instances, stay on one thread (no thread wakes another per
    /// call; about a quarter less CPU per proxied call under load, see
    /// benches/PROFILE.md). 0, the default, serves connections on the one
    /// shared work-stealing runtime. Opt-in for now: with a function whose
    /// listen backlog is tiny (Python's `http.server`, 5) and 64 callers, a
    /// pool per thread opens more connections to it and a few calls waited
    /// for the kernel to complete their connection.
    #[arg(long, env = "FAAS_SERVE_THREADS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub serve_threads: Option<u64>,

    /// The longest a function call may run when the function sets no
    /// `exec_timeout` of its own (504 beyond), and the bound on draining
    /// in-flight calls at shutdown. Seconds or a duration (`60s`, `2m`);
    /// must be above zero.
    #[arg(long, env = "write_timeout", default_value = "60s", value_parser = positive_duration)]
    pub write_timeout: Duration,

    /// Require HTTP Basic auth on `/system/*` (`/function/*`, `/healthz` and
    /// `/metrics` stay open), with the credentials read from the files
    /// `basic-auth-user` and `basic-auth-password` in `--secret-mount-path`.
    #[arg(long, env = "basic_auth", action = ArgAction::SetTrue, value_parser = boolean)]
    pub basic_auth: bool,

    /// Directory holding the basic auth secret files.
    #[arg(long, env = "secret_mount_path", default_value = "/var/openfaas/secrets")]
    pub secret_mount_path: PathBuf,

    /// The scaling layer (crate faas-autoscale): autoscaling by calls in
    /// flight, scale to zero of idle functions labelled
    /// `com.openfaas.scale.zero=true`, scale from zero on the next call.
    /// On by default; `--autoscale false`, `FAAS_AUTOSCALE=false` or
    /// `--no-autoscale` turns it off (functions then keep the replicas they
    /// are given, and a function at zero refuses calls with 503).
    #[arg(long, env = "FAAS_AUTOSCALE", value_name = "BOOL", default_value_t = true, action = ArgAction::Set, value_parser = boolean)]
    pub autoscale: bool,

    /// Turns the scaling layer off: the same as `--autoscale false`.
    #[arg(long)]
    pub no_autoscale: bool,

    /// How long a call to a function with no ready replica is held while
    /// the function starts; beyond it the call gets 504 saying the function
    /// is starting. Seconds or a duration (`30s`, `1m`); above zero.
    #[arg(long, env = "FAAS_SCALE_HOLD_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub scale_hold_timeout: Duration,

    /// How often the autoscaler looks at every function (and the idler
    /// checks for idle ones). Seconds or a duration (`2s`, `500ms`); above
    /// zero.
    #[arg(long, env = "FAAS_AUTOSCALE_INTERVAL", default_value = "2s", value_parser = positive_duration)]
    pub autoscale_interval: Duration,

    /// What the autoscaler measures for functions without the label
    /// `com.openfaas.scale.type`: `capacity` (calls in flight), `rps`
    /// (calls begun per second) or `cpu` (millicores; only with a provider
    /// that can measure CPU, else the gateway refuses to start).
    #[arg(long, env = "FAAS_SCALE_TYPE", default_value = "capacity", value_parser = parse_scale_type)]
    pub scale_type: ScaleType,

    /// The load per replica, in the scale type's unit, for functions
    /// without the label `com.openfaas.scale.target`; at least 1.
    #[arg(long, env = "FAAS_SCALE_TARGET", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub scale_target: u64,

    /// How long a function labelled `com.openfaas.scale.zero=true` without
    /// its own `com.openfaas.scale.zero-duration` stays idle before it is
    /// scaled to zero. Seconds or a duration (`30s`, `15m`); above zero.
    #[arg(long, env = "FAAS_SCALE_ZERO_DURATION", default_value = "15m", value_parser = positive_duration)]
    pub scale_zero_duration: Duration,

    /// The stable window: replicas only go down once every recommendation
    /// of this window agrees (and a manual or alert scale is a floor for
    /// this long). Seconds or a duration (`30s`, `1m`); above zero.
    #[arg(long, env = "FAAS_SCALE_DOWN_WINDOW", default_value = "60s", value_parser = positive_duration)]
    pub scale_down_window: Duration,

    /// Asynchronous calls (`/async-function/...`, `/system/async/...`):
    /// `embedded` keeps the durable queue in `<state dir>/async`; `nats`
    /// uses NATS JetStream at `--nats-url` (several gateways can share it);
    /// `off` serves no asynchronous routes.
    #[arg(long, env = "FAAS_ASYNC_QUEUE", value_enum, default_value_t = AsyncQueueKind::Embedded)]
    pub async_queue: AsyncQueueKind,

    /// The NATS server of `--async-queue nats`.
    #[arg(long, env = "FAAS_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// The JetStream stream of `--async-queue nats` (dead letters go to
    /// `<stream>_DEAD`); gateways sharing a queue use the same name.
    #[arg(long, env = "FAAS_NATS_STREAM", default_value = "FAAS_ASYNC")]
    pub nats_stream: String,

    /// How long a call claimed from JetStream may go unacknowledged (a
    /// busy worker extends it) before another gateway gets it: how soon the
    /// calls of a gateway that died run elsewhere.
    #[arg(long, env = "FAAS_NATS_ACK_WAIT", default_value = "30s", value_parser = positive_duration)]
    pub nats_ack_wait: Duration,

    /// The NATS server whose subjects trigger functions annotated
    /// `topic: a,b` (none without it; cron triggers need no NATS).
    #[arg(long, env = "FAAS_TRIGGER_NATS_URL")]
    pub trigger_nats_url: Option<String>,

    /// The largest request body of an asynchronous call (413 beyond): bytes,
    /// or a number with `KiB`, `MiB` or `GiB`.
    #[arg(long, env = "FAAS_ASYNC_MAX_BODY", default_value = "8MiB", value_parser = parse_bytes)]
    pub async_max_body: u64,

    /// The delay before an asynchronous call's first retry; it doubles with
    /// each attempt (with jitter) up to `--async-retry-cap`.
    #[arg(long, env = "FAAS_ASYNC_RETRY_BASE", default_value = "500ms", value_parser = duration::parse)]
    pub async_retry_base: Duration,

    /// The longest delay between attempts of an asynchronous call.
    #[arg(long, env = "FAAS_ASYNC_RETRY_CAP", default_value = "30s", value_parser = duration::parse)]
    pub async_retry_cap: Duration,

    /// The most callbacks of asynchronous calls delivered at once, in their
    /// own stage (a dead receiver never holds up function calls).
    #[arg(long, env = "FAAS_ASYNC_CALLBACK_CONCURRENCY", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub async_callback_concurrency: u64,

    /// With `--async-queue embedded`: how long a claimed call may go without
    /// its worker renewing the claim (a worker that panicked, an outcome that
    /// could not be recorded) before it runs again. Keep it above the longest
    /// call.
    #[arg(long, env = "FAAS_ASYNC_LEASE_TIMEOUT", default_value = "5m", value_parser = positive_duration)]
    pub async_lease_timeout: Duration,

    /// Keep 15 minutes of 5 s samples per function for the portal's charts
    /// (`GET /system/metrics/history`); `false` serves no history.
    #[arg(long, env = "FAAS_HISTORY", value_name = "BOOL", default_value_t = true, action = ArgAction::Set, value_parser = boolean)]
    pub history: bool,

    /// Log line format; the level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "FAAS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Args {
    /// How many serving threads to start (`--serve-threads`); 0 for none.
    pub fn serving_threads(&self) -> usize {
        self.serve_threads.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The scaling layer's configuration, `None` when it is off.
    pub fn scaling(&self) -> Option<ScalingConfig> {
        if !self.autoscale || self.no_autoscale {
            return None;
        }
        let mut config = ScalingConfig::default();
        config.hold_timeout = self.scale_hold_timeout;
        config.tick = self.autoscale_interval;
        config.scale_type = self.scale_type;
        config.target = self.scale_target;
        config.zero_duration = self.scale_zero_duration;
        config.stable_window = self.scale_down_window;
        Some(config)
    }

    /// The state directory: `--state-dir`, else `<data dir>/faas-rs/local`.
    pub fn state_dir(&self) -> Result<PathBuf, GatewayError> {
        match &self.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => dirs::data_dir().map(|dir| dir.join("faas-rs").join("local")).ok_or(GatewayError::NoDataDir),
        }
    }
}

/// Where asynchronous calls are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AsyncQueueKind {
    /// On disk in the state directory (crate faas-async's `EmbeddedQueue`).
    Embedded,
    /// In NATS JetStream (`JetStreamQueue`), shared by several gateways.
    Nats,
    /// No asynchronous calls.
    Off,
}

impl Args {
    /// The asynchronous layer's dispatcher settings from the flags.
    pub fn async_dispatcher(&self) -> faas_async::DispatcherConfig {
        faas_async::DispatcherConfig {
            backoff: faas_async::Backoff {
                base: self.async_retry_base,
                cap: self.async_retry_cap.max(self.async_retry_base),
            },
            callback_concurrency: usize::try_from(self.async_callback_concurrency).unwrap_or(usize::MAX),
            ..faas_async::DispatcherConfig::default()
        }
    }

    /// The JetStream queue's settings from the flags.
    pub fn jetstream(&self) -> faas_async::JetStreamConfig {
        let mut config = faas_async::JetStreamConfig::new(self.nats_url.clone());
        config.stream = self.nats_stream.clone();
        config.ack_wait = self.nats_ack_wait;
        config
    }
}

/// Parses a byte count: `1048576`, `512KiB`, `8MiB`, `1GiB`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a byte count (e.g. 8MiB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}: use KiB, MiB or GiB")),
    };
    let bytes = number.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("must be greater than zero".to_owned());
    }
    Ok(bytes)
}

/// A header size limit: a byte count of at least 8KiB (hyper's smallest
/// read buffer).
fn parse_header_size(text: &str) -> Result<u64, String> {
    let bytes = parse_bytes(text)?;
    if !(8 << 10..=16 << 20).contains(&bytes) {
        return Err("must be between 8KiB and 16MiB".to_owned());
    }
    Ok(bytes)
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// `capacity`, `rps` or `cpu`.
fn parse_scale_type(text: &str) -> Result<ScaleType, String> {
    text.parse()
}

/// A boolean flag or variable, read by [`faas_core::validate::boolean`]
/// like every boolean setting: `true`/`false`, `1`/`0`, `yes`/`no`,
/// `on`/`off`.
fn boolean(text: &str) -> Result<bool, String> {
    faas_core::validate::boolean("value", text).map_err(|e| match e {
        faas_core::Error::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// A flag's help from its setting's meaning (and what holds when it is
/// unset, when that is not a value clap shows), without Markdown's
/// backticks.
fn help<K: Kind>(setting: &Setting<K>) -> String {
    let unset = match setting.unset {
        Unset::Means(text) => format!(" [default: {text}]"),
        Unset::Default(_) => String::new(),
        Unset::Required => " [required]".to_owned(),
    };
    let text = format!("{}{unset}", setting.meaning).replace('`', "");
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A duration that must be above zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    let value = duration::parse(text).map_err(|e| e.to_string())?;
    if value.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_openfaas_spellings() {
        let args = Args::try_parse_from(["faas-gateway", "--read-timeout", "5", "--write-timeout", "1m"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:8080");
        assert_eq!(args.read_timeout, Duration::from_secs(5));
        assert_eq!(args.write_timeout, Duration::from_secs(60));
        assert!(!args.basic_auth);
        assert_eq!(args.secret_mount_path, PathBuf::from("/var/openfaas/secrets"));
        assert_eq!(args.log_format, LogFormat::Text);
        let args = Args::try_parse_from(["faas-gateway", "--basic-auth", "--log-format", "json"]).unwrap();
        assert!(args.basic_auth);
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Args::try_parse_from(["faas-gateway", "--write-timeout", "0"]).is_err());
        assert!(Args::try_parse_from(["faas-gateway", "--read-timeout", "soon"]).is_err());
        assert!(Args::try_parse_from(["faas-gateway", "--log-format", "xml"]).is_err());
        assert!(Args::try_parse_from(["faas-gateway", "--provider", "nomad"]).is_err());
    }

    #[test]
    fn the_scaling_layer_is_on_unless_turned_off() {
        let on = Args::try_parse_from(["faas-gateway"]).unwrap().scaling().expect("on by default");
        assert_eq!((on.hold_timeout, on.tick), (Duration::from_secs(30), Duration::from_secs(2)));
        let tuned =
            Args::try_parse_from(["faas-gateway", "--scale-hold-timeout", "5s", "--autoscale-interval", "500ms"])
                .unwrap()
                .scaling()
                .unwrap();
        assert_eq!((tuned.hold_timeout, tuned.tick), (Duration::from_secs(5), Duration::from_millis(500)));
        for off in [&["faas-gateway", "--no-autoscale"][..], &["faas-gateway", "--autoscale", "false"]] {
            assert!(Args::try_parse_from(off).unwrap().scaling().is_none(), "{off:?}");
        }
        assert!(Args::try_parse_from(["faas-gateway", "--scale-hold-timeout", "0"]).is_err());
    }

    #[test]
    fn scaling_defaults_are_flags() {
        let on = Args::try_parse_from(["faas-gateway"]).unwrap().scaling().unwrap();
        assert_eq!((on.scale_type, on.target), (ScaleType::Capacity, 50));
        assert_eq!((on.zero_duration, on.stable_window), (Duration::from_secs(900), Duration::from_secs(60)));
        let tuned = Args::try_parse_from([
            "faas-gateway",
            "--scale-type",
            "rps",
            "--scale-target",
            "5",
            "--scale-zero-duration",
            "30s",
            "--scale-down-window",
            "1m30s",
        ])
        .unwrap()
        .scaling()
        .unwrap();
        assert_eq!((tuned.scale_type, tuned.target), (ScaleType::Rps, 5));
        assert_eq!((tuned.zero_duration, tuned.stable_window), (Duration::from_secs(30), Duration::from_secs(90)));
        for (flag, bad, words) in [
            ("--scale-type", "memory", "capacity, rps or cpu"),
            ("--scale-target", "0", "0"),
            ("--scale-target", "fast", "fast"),
            ("--scale-zero-duration", "0s", "greater than zero"),
            ("--scale-down-window", "1x", "unit"),
        ] {
            let err = Args::try_parse_from(["faas-gateway", flag, bad]).unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains(words), "{flag} {bad}: {err}");
        }
    }

    #[test]
    fn async_flags_default_to_the_embedded_queue_and_8_mib() {
        let args = Args::try_parse_from(["faas-gateway"]).unwrap();
        assert_eq!((args.async_queue, args.async_max_body), (AsyncQueueKind::Embedded, 8 << 20));
        assert_eq!(args.async_dispatcher().backoff.base, Duration::from_millis(500));
        let args = Args::try_parse_from([
            "faas-gateway",
            "--async-queue",
            "off",
            "--async-max-body",
            "512KiB",
            "--async-retry-base",
            "50ms",
            "--async-retry-cap",
            "1s",
        ])
        .unwrap();
        assert_eq!((args.async_queue, args.async_max_body), (AsyncQueueKind::Off, 512 << 10));
        let backoff = args.async_dispatcher().backoff;
        assert_eq!((backoff.base, backoff.cap), (Duration::from_millis(50), Duration::from_secs(1)));
        let args =
            Args::try_parse_from(["faas-gateway", "--async-queue", "nats", "--nats-url", "nats://10.0.0.1:4222"])
                .unwrap();
        assert_eq!(args.async_queue, AsyncQueueKind::Nats);
        let nats = args.jetstream();
        assert_eq!((nats.url.as_str(), nats.stream.as_str()), ("nats://10.0.0.1:4222", "FAAS_ASYNC"));
        assert_eq!(nats.ack_wait, Duration::from_secs(30));
        for bad in ["0", "8MB", "lots", "99999999999GiB"] {
            assert!(Args::try_parse_from(["faas-gateway", "--async-max-body", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn callback_concurrency_and_lease_timeout_are_flags() {
        let args = Args::try_parse_from(["faas-gateway"]).unwrap();
        assert_eq!(args.async_dispatcher().callback_concurrency, 128);
        assert_eq!(args.async_lease_timeout, Duration::from_secs(300));
        let args =
            Args::try_parse_from(["faas-gateway", "--async-callback-concurrency", "4", "--async-lease-timeout", "90s"])
                .unwrap();
        assert_eq!(args.async_dispatcher().callback_concurrency, 4);
        assert_eq!(args.async_lease_timeout, Duration::from_secs(90));
        for (flag, bad) in [("--async-callback-concurrency", "0"), ("--async-lease-timeout", "0s")] {
            assert!(Args::try_parse_from(["faas-gateway", flag, bad]).is_err(), "{flag} {bad}");
        }
    }

    #[test]
    fn server_limits_default_to_64_mib_64_kib_and_10000_connections() {
        let args = Args::try_parse_from(["faas-gateway"]).unwrap();
        assert_eq!((args.max_body, args.max_header_size, args.max_connections), (64 << 20, 64 << 10, 10_000));
        let args = Args::try_parse_from([
            "faas-gateway",
            "--max-body",
            "1GiB",
            "--max-header-size",
            "8KiB",
            "--max-connections",
            "2",
        ])
        .unwrap();
        assert_eq!((args.max_body, args.max_header_size, args.max_connections), (1 << 30, 8 << 10, 2));
        for (flag, bad) in [("--max-body", "0"), ("--max-header-size", "4KiB"), ("--max-connections", "0")] {
            assert!(Args::try_parse_from(["faas-gateway", flag, bad]).is_err(), "{flag} {bad}");
        }
    }

    #[test]
    fn local_flags_and_the_help_come_from_the_settings_tables() {
        use clap::CommandFactory;
        let mut command = Args::command();
        let help = command.render_long_help().to_string();
        assert!(help.contains(providers::settings_help().trim_end()), "{help}");
        for setting in settings::LOCAL.settings {
            let flag = setting.name().trim_start_matches("FAAS_").to_ascii_lowercase().replace('_', "-");
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag.as_str())).expect("a flag a setting");
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(setting.name()), "--{flag}");
            assert!(help.contains(&setting.meaning().replace('`', "")[1..]), "--{flag}'s help is its meaning");
        }
        let sandbox = |word: &str| Args::try_parse_from(["faas-gateway", "--sandbox", word]).map(|a| a.sandbox);
        assert_eq!(Args::try_parse_from(["faas-gateway"]).unwrap().sandbox, settings::SANDBOX.default_text().unwrap());
        for word in settings::SANDBOX.kind.words() {
            assert_eq!(sandbox(word).unwrap(), word);
        }
        assert!(sandbox("strict").is_err());
    }

    #[test]
    fn boolean_flags_take_the_one_boolean_form() {
        for (text, want) in [("yes", true), ("On", true), ("1", true), ("off", false), ("FALSE", false), ("no", false)]
        {
            let args = Args::try_parse_from(["faas-gateway", "--autoscale", text]).unwrap();
            assert_eq!(args.autoscale, want, "{text}");
        }
        for bad in ["t", "y", "maybe"] {
            let err = Args::try_parse_from(["faas-gateway", "--history", bad]).unwrap_err().to_string();
            assert!(err.contains("yes, no, on or off"), "{bad}: {err}");
        }
        assert!(Args::try_parse_from(["faas-gateway", "--basic-auth"]).unwrap().basic_auth);
    }

    #[test]
    fn serving_threads_are_opt_in() {
        assert_eq!(Args::try_parse_from(["faas-gateway"]).unwrap().serving_threads(), 0);
        let args = Args::try_parse_from(["faas-gateway", "--serve-threads", "2"]).unwrap();
        assert_eq!(args.serving_threads(), 2);
        assert!(Args::try_parse_from(["faas-gateway", "--serve-threads", "1025"]).is_err());
    }

    #[test]
    fn state_dir_defaults_under_the_data_dir() {
        let args = Args::try_parse_from(["faas-gateway", "--state-dir", "/tmp/x"]).unwrap();
        assert_eq!(args.state_dir().unwrap(), PathBuf::from("/tmp/x"));
    }
}
