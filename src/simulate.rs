//! `vigil simulate`: a deterministic generator of realistic Okta System Log traffic, with optional
//! injected attacks, for tests, benchmarks, demos and policy development.
//!
//! # The simulated organisation
//!
//! `--users` people of `example.com`, each with an Okta-style id (`00u…`), a login
//! `first.last@example.com`, a home city (mostly United States, some United Kingdom, Germany, India
//! and Canada; see [`HOME_PLACES`]) with its residential ISP and ASN, one or two devices (a consistent
//! user agent, OS and browser), an Okta Verify push or code factor, and a work window between 08:00
//! and 18:00 local time (fixed UTC offsets, standard time). About 5% of users sign in through the
//! corporate VPN on some days; the VPN egresses in the user's home country (ASNs in
//! [`CORPORATE_VPN_ASNS`]) and a user never mixes home and VPN sign-ins on one day, so a VPN day never
//! looks like impossible travel at realistic speeds (the closest pair of sign-ins on different
//! routes is an overnight gap apart). Every simulated day is a working day.
//!
//! # A benign user-day
//!
//! All inside the user's work window, from the user's home (or VPN) address and own device:
//!
//! * 1 or 2 sign-ins (2 with probability 0.4). Each is `policy.evaluate_sign_on` (CHALLENGE), for push
//!   users one `system.push.send_factor_verify_push`, `user.authentication.auth_via_mfa` (SUCCESS),
//!   then `user.session.start` (SUCCESS), all within about 45 seconds.
//! * With probability 0.03 the first sign-in is preceded by one password typo: `user.session.start`
//!   FAILURE `INVALID_CREDENTIALS`, the successful sign-in following about a minute later. A benign
//!   user never has two failed sign-ins in one day.
//! * 5 to 25 `user.authentication.sso` to the user's apps.
//! * With probability 0.3, one or two `app.oauth2.token.grant`; with probability 0.2 one
//!   `user.authentication.verify`.
//! * `user.session.end` of the first session before a second sign-in (probability 0.5) and of the
//!   last session near the end of the day (probability 0.4).
//!
//! Benign traffic contains no foreign sign-in, no sign-in outside the work window, no push burst or
//! denied push, no `threatSuspected: "true"` and no administrative or security configuration change.
//!
//! # Attacks
//!
//! Attacks are injected on the last simulated day, at a deterministic time inside the target user's
//! work window, each against a distinct target (users who use the VPN and, for MFA fatigue, users
//! without push are chosen last). [`InjectedAttack::event_uuids`] lists the attacker's events about the
//! target; [`InjectedAttack::related_uuids`] lists the other events of the scenario.
//!
//! * `credential-stuffing`: one DigitalOcean address in Amsterdam (AS14061, `isProxy: true`,
//!   `python-requests` user agent) tries one password against 20 other users within 3 minutes, then
//!   4 against the target within 6 minutes: `user.session.start` FAILURE `INVALID_CREDENTIALS`,
//!   `debugData.threatSuspected: "true"`.
//! * `mfa-fatigue`: from a residential address in Bucharest, Romania (AS8708), the target's known
//!   password gets `policy.evaluate_sign_on`, then 8 `system.push.send_factor_verify_push` within
//!   6 minutes, 6 `user.mfa.okta_verify.deny_push` (FAILURE), then `user.authentication.auth_via_mfa`
//!   and `user.session.start` (SUCCESS).
//! * `session-theft`: the target signs in normally from home; 40 minutes later the same session
//!   (same `externalSessionId`) starts from Lagos, Nigeria (AS29465, another device), followed by
//!   3 `user.authentication.sso`.
//! * `user-reported`: `user.account.report_suspicious_activity_by_enduser` by the target about their
//!   own account.
//! * `admin-backdoor`: the target, a compromised administrator, within 10 minutes grants Super
//!   administrator to another user, creates an API token, grants Okta support impersonation,
//!   deactivates the log stream, sets ThreatInsight to audit only, creates an identity provider,
//!   deactivates the MFA rule of the global session policy and resets all factors of another user.
//!
//! # Determinism
//!
//! Everything, uuids included, comes from `ChaCha8Rng` streams seeded with `--seed`; no map iteration
//! order reaches the output (JSON objects are written with sorted keys). Benign traffic is generated
//! before and independently of the attacks, so adding an attack never changes the benign events.
//! About 2% of events carry `version` and a numeric `postalCode` as JSON numbers, as Okta sometimes
//! does, to exercise parsers.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Autonomous systems of the corporate VPN egress (Cloudflare for the United States and Canada,
/// Zscaler for the United Kingdom, Germany and India). The policy pack's VPN allowlist should
/// contain exactly these; simulated VPN sign-ins always egress in the user's home country.
pub const CORPORATE_VPN_ASNS: &[u64] = &[13335, 62044];

/// Every event type the simulator can emit; all are ids of the Okta event-type catalogue.
pub const EMITTED_EVENT_TYPES: &[&str] = &[
    "app.oauth2.token.grant",
    "policy.evaluate_sign_on",
    "policy.rule.deactivate",
    "security.threat.configuration.update",
    "system.api_token.create",
    "system.idp.lifecycle.create",
    "system.log_stream.lifecycle.deactivate",
    "system.push.send_factor_verify_push",
    "user.account.privilege.grant",
    "user.account.report_suspicious_activity_by_enduser",
    "user.authentication.auth_via_mfa",
    "user.authentication.sso",
    "user.authentication.verify",
    "user.mfa.factor.reset_all",
    "user.mfa.okta_verify.deny_push",
    "user.session.end",
    "user.session.impersonation.grant",
    "user.session.start",
];

/// The Okta org the simulated events come from.
const ORG_HOST: &str = "example.okta.com";
/// Maximum number of events in one Event Hook delivery (Okta's own limit).
const HOOK_BATCH: usize = 100;
/// Share of events whose `version` and numeric `postalCode` are written as JSON numbers.
const NUMERIC_FIELD_SHARE: f64 = 0.02;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

// ---------------------------------------------------------------------------------------------
// Command line and configuration
// ---------------------------------------------------------------------------------------------

/// Generate realistic Okta System Log traffic, optionally with injected attacks.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Number of simulated users.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub users: usize,
    /// Number of simulated days.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub days: u32,
    /// First simulated day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", default_value = "2026-03-02")]
    pub start: NaiveDate,
    /// Seed of the random generator; the same options give byte-identical output.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Attack to inject on the last simulated day (repeatable; `all` injects every attack).
    #[arg(long = "attack", value_enum, value_name = "NAME")]
    pub attacks: Vec<AttackChoice>,
    /// Output format: one LogEvent per line, one JSON array, or Okta Event Hook envelopes.
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: OutputFormat,
    /// Write the events to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a JSON manifest of the injected attacks to this file.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

/// How the events are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One LogEvent per line.
    Ndjson,
    /// One JSON array of LogEvents, like a page of the System Log API.
    Array,
    /// One Okta Event Hook envelope per line, each with up to 100 events in `data.events`.
    Hook,
}

/// An attack scenario the simulator can inject.
#[derive(clap::ValueEnum, Serialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Password spraying from one hosting address, then repeated failures against the target.
    CredentialStuffing,
    /// A burst of Okta Verify pushes and denials, then an approved push from abroad.
    MfaFatigue,
    /// The target's session reused from another continent 40 minutes after a normal sign-in.
    SessionTheft,
    /// The target reports suspicious activity on their own account.
    UserReported,
    /// A compromised administrator weakens the org's security within 10 minutes.
    AdminBackdoor,
}

impl Attack {
    /// Every attack, in the order they are injected.
    pub const ALL: [Attack; 5] = [
        Attack::CredentialStuffing,
        Attack::MfaFatigue,
        Attack::SessionTheft,
        Attack::UserReported,
        Attack::AdminBackdoor,
    ];

    /// The kebab-case name used on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Attack::CredentialStuffing => "credential-stuffing",
            Attack::MfaFatigue => "mfa-fatigue",
            Attack::SessionTheft => "session-theft",
            Attack::UserReported => "user-reported",
            Attack::AdminBackdoor => "admin-backdoor",
        }
    }
}

/// A value of `--attack`: one attack, or `all` of them.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackChoice {
    /// Password spray from one hosting address, then 4 failures against the target.
    CredentialStuffing,
    /// 8 pushes and 6 denials, then an approved push and a sign-in from Romania.
    MfaFatigue,
    /// A home sign-in, then the same session from Lagos 40 minutes later.
    SessionTheft,
    /// The target reports suspicious activity on their account.
    UserReported,
    /// A compromised administrator makes 8 security changes within 10 minutes.
    AdminBackdoor,
    /// Every attack.
    All,
}

impl AttackChoice {
    /// The attacks this choice stands for.
    pub fn attacks(self) -> &'static [Attack] {
        match self {
            AttackChoice::CredentialStuffing => &[Attack::CredentialStuffing],
            AttackChoice::MfaFatigue => &[Attack::MfaFatigue],
            AttackChoice::SessionTheft => &[Attack::SessionTheft],
            AttackChoice::UserReported => &[Attack::UserReported],
            AttackChoice::AdminBackdoor => &[Attack::AdminBackdoor],
            AttackChoice::All => &Attack::ALL,
        }
    }
}

/// What to simulate, independent of how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Number of users.
    pub users: usize,
    /// Number of days.
    pub days: u32,
    /// The first day (UTC date; each user's working day is in their local time).
    pub start: NaiveDate,
    /// Seed of every random choice.
    pub seed: u64,
    /// Attacks to inject on the last day; duplicates are ignored, order does not matter.
    pub attacks: Vec<Attack>,
}

impl From<&SimulateArgs> for SimConfig {
    fn from(args: &SimulateArgs) -> Self {
        SimConfig {
            users: args.users,
            days: args.days,
            start: args.start,
            seed: args.seed,
            attacks: args
                .attacks
                .iter()
                .flat_map(|choice| choice.attacks().iter().copied())
                .collect(),
        }
    }
}

/// The generated traffic.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Okta LogEvents sorted by `published` (ties in generation order).
    pub events: Vec<Value>,
    /// The attacks that were injected, in [`Attack::ALL`] order.
    pub injected: Vec<InjectedAttack>,
}

/// One injected attack, as written to the manifest.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct InjectedAttack {
    /// Which attack.
    pub attack: Attack,
    /// Okta id of the target user.
    pub user_id: String,
    /// Login of the target user.
    pub user_login: String,
    /// The attacker's events about the target, in time order.
    pub event_uuids: Vec<String>,
    /// Other events of the scenario, in time order: the sprays against other users
    /// (credential stuffing) or the victim's own sign-in before the theft (session theft).
    pub related_uuids: Vec<String>,
}

/// The manifest written by `--manifest`.
#[derive(Serialize)]
struct Manifest<'a> {
    seed: u64,
    users: usize,
    days: u32,
    start: String,
    events: usize,
    injected: &'a [InjectedAttack],
}

/// Runs `vigil simulate`: generates the traffic and writes it (and the manifest, if asked).
pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let cfg = SimConfig::from(args);
    if cfg.users == 0 {
        bail!("--users must be at least 1");
    }
    if cfg.days == 0 {
        bail!("--days must be at least 1");
    }
    if last_day(&cfg).is_none() {
        bail!(
            "--start {} plus --days {} is out of range",
            cfg.start,
            cfg.days
        );
    }
    let sim = generate(&cfg);
    match &args.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write_events(&sim.events, args.format, cfg.seed, &mut out)
                .with_context(|| format!("writing {}", path.display()))?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write_events(&sim.events, args.format, cfg.seed, &mut out)
                .context("writing standard output")?;
            out.flush().context("writing standard output")?;
        }
    }
    if let Some(path) = &args.manifest {
        let manifest = Manifest {
            seed: cfg.seed,
            users: cfg.users,
            days: cfg.days,
            start: cfg.start.to_string(),
            events: sim.events.len(),
            injected: &sim.injected,
        };
        let mut text = serde_json::to_string_pretty(&manifest)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes `events` in `format`. `seed` makes the Event Hook envelope ids deterministic.
pub fn write_events(
    events: &[Value],
    format: OutputFormat,
    seed: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Ndjson => {
            for event in events {
                serde_json::to_writer(&mut *out, event)?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Array => {
            serde_json::to_writer(&mut *out, events)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Hook => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x686f_6f6b_5f65_6e76);
            let hook_id = okta_id(&mut rng, "who");
            let source = format!("https://{ORG_HOST}/api/v1/eventHooks/{hook_id}");
            for batch in events.chunks(HOOK_BATCH) {
                // Okta sets eventTime when it delivers, which is after the last event it carries.
                let event_time = batch
                    .last()
                    .and_then(|event| event.get("published"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let envelope = json!({
                    "eventType": "com.okta.event_hook",
                    "eventTypeVersion": "1.0",
                    "cloudEventsVersion": "0.1",
                    "source": source,
                    "eventId": uuid(&mut rng),
                    "eventTime": event_time,
                    "contentType": "application/json",
                    "data": {"events": batch},
                });
                serde_json::to_writer(&mut *out, &envelope)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Static world: places, networks, devices, apps, names
// ---------------------------------------------------------------------------------------------

/// A city as Okta's geolocation reports it.
#[derive(Debug, PartialEq)]
struct Place {
    city: &'static str,
    state: &'static str,
    country: &'static str,
    postal_code: &'static str,
    lat: f64,
    lon: f64,
    /// Fixed offset from UTC in minutes (standard time).
    utc_offset_min: i64,
}

const fn place(
    city: &'static str,
    state: &'static str,
    country: &'static str,
    postal_code: &'static str,
    lat: f64,
    lon: f64,
    utc_offset_min: i64,
) -> Place {
    Place {
        city,
        state,
        country,
        postal_code,
        lat,
        lon,
        utc_offset_min,
    }
}

const US: &str = "United States";
const UK: &str = "United Kingdom";
const DE: &str = "Germany";
const IN: &str = "India";
const CA: &str = "Canada";

/// Home cities with their weight in the population (percent).
const HOME_PLACES: &[(Place, u32)] = &[
    (
        place("New York", "New York", US, "10001", 40.7128, -74.0060, -300),
        14,
    ),
    (
        place(
            "San Francisco",
            "California",
            US,
            "94103",
            37.7749,
            -122.4194,
            -480,
        ),
        12,
    ),
    (
        place("Chicago", "Illinois", US, "60601", 41.8781, -87.6298, -360),
        9,
    ),
    (
        place("Austin", "Texas", US, "78701", 30.2672, -97.7431, -360),
        8,
    ),
    (
        place(
            "Seattle",
            "Washington",
            US,
            "98101",
            47.6062,
            -122.3321,
            -480,
        ),
        8,
    ),
    (
        place(
            "Philadelphia",
            "Pennsylvania",
            US,
            "19103",
            39.9526,
            -75.1652,
            -300,
        ),
        7,
    ),
    (
        place("Denver", "Colorado", US, "80202", 39.7392, -104.9903, -420),
        6,
    ),
    (
        place("Atlanta", "Georgia", US, "30303", 33.7490, -84.3880, -300),
        6,
    ),
    (
        place("London", "England", UK, "EC1A 1BB", 51.5074, -0.1278, 0),
        5,
    ),
    (
        place("Manchester", "England", UK, "M1 1AE", 53.4808, -2.2426, 0),
        3,
    ),
    (
        place("Berlin", "Berlin", DE, "10115", 52.5200, 13.4050, 60),
        4,
    ),
    (
        place("Munich", "Bavaria", DE, "80331", 48.1351, 11.5820, 60),
        4,
    ),
    (
        place(
            "Bengaluru",
            "Karnataka",
            IN,
            "560001",
            12.9716,
            77.5946,
            330,
        ),
        7,
    ),
    (
        place("Toronto", "Ontario", CA, "M5H 2N2", 43.6532, -79.3832, -300),
        7,
    ),
];

/// An autonomous system as Okta's `securityContext` reports it, with address prefixes to draw from.
#[derive(Debug, PartialEq)]
struct Network {
    as_number: u64,
    as_org: &'static str,
    isp: &'static str,
    domain: &'static str,
    is_proxy: bool,
    /// First two octets of the addresses this network hands out.
    prefixes: &'static [(u8, u8)],
}

/// Residential ISPs by country.
const HOME_NETWORKS: &[(&str, Network)] = &[
    (
        US,
        Network {
            as_number: 7922,
            as_org: "comcast",
            isp: "comcast cable communications llc",
            domain: "comcast.net",
            is_proxy: false,
            prefixes: &[(73, 15), (24, 4), (98, 207)],
        },
    ),
    (
        US,
        Network {
            as_number: 701,
            as_org: "verizon business",
            isp: "verizon fios",
            domain: "verizon.net",
            is_proxy: false,
            prefixes: &[(71, 178), (108, 28)],
        },
    ),
    (
        US,
        Network {
            as_number: 7018,
            as_org: "at&t services inc.",
            isp: "at&t internet",
            domain: "att.net",
            is_proxy: false,
            prefixes: &[(99, 37), (76, 212)],
        },
    ),
    (
        US,
        Network {
            as_number: 20115,
            as_org: "charter communications",
            isp: "spectrum",
            domain: "charter.com",
            is_proxy: false,
            prefixes: &[(66, 190), (97, 91)],
        },
    ),
    (
        UK,
        Network {
            as_number: 2856,
            as_org: "british telecommunications plc",
            isp: "bt",
            domain: "bt.com",
            is_proxy: false,
            prefixes: &[(86, 128), (81, 151)],
        },
    ),
    (
        UK,
        Network {
            as_number: 5089,
            as_org: "virgin media limited",
            isp: "virgin media",
            domain: "virginmedia.com",
            is_proxy: false,
            prefixes: &[(82, 4), (86, 14)],
        },
    ),
    (
        DE,
        Network {
            as_number: 3320,
            as_org: "deutsche telekom ag",
            isp: "deutsche telekom ag",
            domain: "t-online.de",
            is_proxy: false,
            prefixes: &[(87, 150), (93, 220)],
        },
    ),
    (
        DE,
        Network {
            as_number: 3209,
            as_org: "vodafone gmbh",
            isp: "vodafone germany",
            domain: "vodafone.de",
            is_proxy: false,
            prefixes: &[(88, 64), (94, 134)],
        },
    ),
    (
        IN,
        Network {
            as_number: 24560,
            as_org: "bharti airtel ltd.",
            isp: "airtel broadband",
            domain: "airtel.in",
            is_proxy: false,
            prefixes: &[(122, 171), (223, 186)],
        },
    ),
    (
        IN,
        Network {
            as_number: 55836,
            as_org: "reliance jio infocomm limited",
            isp: "reliance jio",
            domain: "jio.com",
            is_proxy: false,
            prefixes: &[(49, 36), (157, 48)],
        },
    ),
    (
        CA,
        Network {
            as_number: 812,
            as_org: "rogers communications canada inc.",
            isp: "rogers",
            domain: "rogers.com",
            is_proxy: false,
            prefixes: &[(99, 228), (174, 112)],
        },
    ),
    (
        CA,
        Network {
            as_number: 577,
            as_org: "bell canada",
            isp: "bell canada",
            domain: "bell.ca",
            is_proxy: false,
            prefixes: &[(70, 52), (184, 144)],
        },
    ),
];

const CLOUDFLARE_VPN: Network = Network {
    as_number: 13335,
    as_org: "cloudflare, inc.",
    isp: "cloudflare",
    domain: "cloudflare.com",
    is_proxy: false,
    prefixes: &[(104, 28)],
};

const ZSCALER_VPN: Network = Network {
    as_number: 62044,
    as_org: "zscaler switzerland gmbh",
    isp: "zscaler",
    domain: "zscaler.net",
    is_proxy: false,
    prefixes: &[(165, 225)],
};

/// Corporate VPN egress by home country: always inside the home country, so a VPN day never
/// creates a foreign sign-in.
const VPN_EGRESS: &[(&str, Place, Network)] = &[
    (
        US,
        place("Ashburn", "Virginia", US, "20147", 39.0438, -77.4874, -300),
        CLOUDFLARE_VPN,
    ),
    (
        CA,
        place("Toronto", "Ontario", CA, "M5J 2N8", 43.6426, -79.3871, -300),
        CLOUDFLARE_VPN,
    ),
    (
        UK,
        place("London", "England", UK, "EC2V 7HH", 51.5155, -0.0922, 0),
        ZSCALER_VPN,
    ),
    (
        DE,
        place(
            "Frankfurt am Main",
            "Hesse",
            DE,
            "60311",
            50.1109,
            8.6821,
            60,
        ),
        ZSCALER_VPN,
    ),
    (
        IN,
        place("Mumbai", "Maharashtra", IN, "400001", 19.0760, 72.8777, 330),
        ZSCALER_VPN,
    ),
];

/// Credential stuffing comes from a hosting provider known to Okta as a proxy.
const STUFFING_PLACE: Place = place(
    "Amsterdam",
    "North Holland",
    "Netherlands",
    "1012",
    52.3676,
    4.9041,
    60,
);
const STUFFING_NETWORK: Network = Network {
    as_number: 14061,
    as_org: "digitalocean, llc",
    isp: "digitalocean",
    domain: "digitalocean.com",
    is_proxy: true,
    prefixes: &[(188, 166)],
};

/// MFA fatigue comes from a residential address abroad.
const FATIGUE_PLACE: Place = place(
    "Bucharest",
    "Bucuresti",
    "Romania",
    "010011",
    44.4268,
    26.1025,
    120,
);
const FATIGUE_NETWORK: Network = Network {
    as_number: 8708,
    as_org: "rcs & rds s.a.",
    isp: "rcs & rds",
    domain: "rcs-rds.ro",
    is_proxy: false,
    prefixes: &[(86, 124)],
};

/// The stolen session is replayed from a mobile network in Lagos.
const THEFT_PLACE: Place = place("Lagos", "Lagos", "Nigeria", "100001", 6.5244, 3.3792, 60);
const THEFT_NETWORK: Network = Network {
    as_number: 29465,
    as_org: "mtn nigeria communication limited",
    isp: "mtn nigeria",
    domain: "mtnnigeria.net",
    is_proxy: false,
    prefixes: &[(102, 89)],
};

/// A browser on a device, as Okta's `client.userAgent` and `client.device` report it.
#[derive(Debug, PartialEq)]
struct Device {
    raw_user_agent: &'static str,
    os: &'static str,
    browser: &'static str,
    kind: &'static str,
}

const USER_DEVICES: &[Device] = &[
    Device {
        raw_user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
        os: "Windows 10",
        browser: "CHROME",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
        os: "Mac OS X",
        browser: "CHROME",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
        os: "Mac OS X",
        browser: "SAFARI",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 Edg/133.0.0.0",
        os: "Windows 10",
        browser: "EDGE_CHROMIUM",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0",
        os: "Windows 10",
        browser: "FIREFOX",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0",
        os: "Linux",
        browser: "FIREFOX",
        kind: "Computer",
    },
    Device {
        raw_user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
        os: "iOS",
        browser: "MOBILE_SAFARI",
        kind: "Mobile",
    },
];

const STUFFING_DEVICE: Device = Device {
    raw_user_agent: "python-requests/2.32.3",
    os: "Unknown",
    browser: "UNKNOWN",
    kind: "Unknown",
};

const FATIGUE_DEVICE: Device = Device {
    raw_user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    os: "Windows 10",
    browser: "CHROME",
    kind: "Computer",
};

const THEFT_DEVICE: Device = Device {
    raw_user_agent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    os: "Linux",
    browser: "CHROME",
    kind: "Computer",
};

/// Apps users sign in to: display name, Okta app name, sign-on mode.
const APPS: &[(&str, &str, &str)] = &[
    ("Salesforce", "salesforce", "SAML 2.0"),
    ("Slack", "slack", "SAML 2.0"),
    ("Google Workspace", "google", "SAML 2.0"),
    ("Microsoft Office 365", "office365", "WS-Federation"),
    ("Zoom", "zoomus", "SAML 2.0"),
    ("Atlassian Cloud", "atlassian", "SAML 2.0"),
    ("GitHub Enterprise Cloud", "githubcloud", "SAML 2.0"),
    ("Workday", "workday", "SAML 2.0"),
    ("Box", "boxnet", "SAML 2.0"),
    ("AWS IAM Identity Center", "amazon_aws_sso", "SAML 2.0"),
    ("Expense Portal", "oidc_client", "OpenID Connect"),
];

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "david", "emma", "frank", "grace", "henry", "isla", "jack", "karen",
    "liam", "maya", "noah", "olivia", "peter", "quinn", "rachel", "sam", "tara", "umar", "vera",
    "will", "xena", "yusuf", "zoe", "aarav", "bea", "chen", "diego", "elif", "fatima", "giulia",
    "hiro", "ines", "jonas", "kofi", "lena", "mateo", "nadia",
];

const LAST_NAMES: &[&str] = &[
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "martinez",
    "lopez", "wilson", "anderson", "taylor", "thomas", "moore", "jackson", "martin", "lee",
    "thompson", "white", "harris", "clark", "lewis", "walker", "hall", "young", "king", "wright",
    "scott", "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell", "patel",
    "schmidt", "mueller", "nguyen",
];

// ---------------------------------------------------------------------------------------------
// The population
// ---------------------------------------------------------------------------------------------

/// Where a request comes from: address, location, network and device.
#[derive(Debug, Clone, Copy)]
struct Origin<'a> {
    ip: &'a str,
    place: &'a Place,
    net: &'a Network,
    device: &'a Device,
}

/// One simulated person.
#[derive(Debug)]
struct SimUser {
    id: String,
    login: String,
    display_name: String,
    home: &'static Place,
    home_net: &'static Network,
    home_ip: String,
    devices: Vec<&'static Device>,
    /// Okta Verify push (true) or a one-time code (false) as second factor.
    push: bool,
    /// Signs in through the corporate VPN on some days.
    vpn: bool,
    vpn_place: &'static Place,
    vpn_net: &'static Network,
    /// Authenticator enrollment id of the second factor.
    factor_id: String,
    /// Local minute of the day the work window opens (before daily jitter).
    work_start_min: i64,
    /// Length of the work window in minutes (before daily jitter).
    work_len_min: i64,
    /// Indexes into [`APPS`].
    apps: Vec<usize>,
    /// Okta id of the user's AppUser per app, parallel to `apps`.
    app_user_ids: Vec<String>,
}

/// Org-wide ids that appear in many events.
#[derive(Debug)]
struct Org {
    org_id: String,
    app_ids: Vec<String>,
    session_policy_id: String,
    mfa_rule_id: String,
}

/// Builds the users and org ids of a configuration (the same for every day and every attack).
fn population(cfg: &SimConfig) -> (Org, Vec<SimUser>) {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7573_6572_735f_7631);
    let org = Org {
        org_id: okta_id(&mut rng, "00o"),
        app_ids: APPS.iter().map(|_| okta_id(&mut rng, "0oa")).collect(),
        session_policy_id: okta_id(&mut rng, "00p"),
        mfa_rule_id: okta_id(&mut rng, "0pr"),
    };
    let combos = FIRST_NAMES.len() * LAST_NAMES.len();
    let mut name_order: Vec<usize> = (0..combos).collect();
    name_order.shuffle(&mut rng);
    let total_weight: u32 = HOME_PLACES.iter().map(|(_, weight)| weight).sum();
    let users = (0..cfg.users)
        .map(|index| {
            let combo = name_order[index % combos];
            let first = FIRST_NAMES[combo / LAST_NAMES.len()];
            let last = LAST_NAMES[combo % LAST_NAMES.len()];
            // Logins stay unique past the name table by numbering the later rounds.
            let round = index / combos;
            let suffix = if round == 0 {
                String::new()
            } else {
                (round + 1).to_string()
            };
            let login = format!("{first}.{last}{suffix}@example.com");
            let display_name = format!("{} {}", capitalise(first), capitalise(last));
            let mut pick = rng.random_range(0..total_weight);
            let mut home = &HOME_PLACES[0].0;
            for (candidate, weight) in HOME_PLACES {
                if pick < *weight {
                    home = candidate;
                    break;
                }
                pick -= weight;
            }
            let nets: Vec<&'static Network> = HOME_NETWORKS
                .iter()
                .filter(|(country, _)| *country == home.country)
                .map(|(_, net)| net)
                .collect();
            let home_net = nets[rng.random_range(0..nets.len())];
            let home_ip = ip_in(&mut rng, home_net);
            let (vpn_place, vpn_net) = VPN_EGRESS
                .iter()
                .find(|(country, _, _)| *country == home.country)
                .map(|(_, place, net)| (place, net))
                .unwrap_or((&VPN_EGRESS[0].1, &VPN_EGRESS[0].2));
            let device_count = rng.random_range(1..=2);
            let mut devices: Vec<&'static Device> = Vec::with_capacity(device_count);
            while devices.len() < device_count {
                let device = &USER_DEVICES[rng.random_range(0..USER_DEVICES.len())];
                if !devices.contains(&device) {
                    devices.push(device);
                }
            }
            let mut apps: Vec<usize> = (0..APPS.len()).collect();
            apps.shuffle(&mut rng);
            apps.truncate(rng.random_range(4..=7));
            apps.sort_unstable();
            let app_user_ids = apps.iter().map(|_| okta_id(&mut rng, "0ua")).collect();
            SimUser {
                id: okta_id(&mut rng, "00u"),
                login,
                display_name,
                home,
                home_net,
                home_ip,
                devices,
                push: rng.random_bool(0.7),
                vpn: rng.random_bool(0.05),
                vpn_place,
                vpn_net,
                factor_id: okta_id(&mut rng, "pfd"),
                // 08:05..08:45 plus at most ±5 minutes of daily jitter: never before 08:00.
                work_start_min: 8 * 60 + rng.random_range(5..=45),
                // 8h..8h50 plus at most ±5 minutes: never past 17:50 local.
                work_len_min: rng.random_range(480..=530),
                apps,
                app_user_ids,
            }
        })
        .collect();
    (org, users)
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Ids and time
// ---------------------------------------------------------------------------------------------

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn alphanumeric(rng: &mut ChaCha8Rng, len: usize) -> String {
    // Ten base-62 digits per 64-bit draw: the rng dominates debug-build run time otherwise.
    let mut text = String::with_capacity(len);
    let mut bits = 0u64;
    for index in 0..len {
        if index % 10 == 0 {
            bits = rng.random();
        }
        text.push(char::from(ALPHANUMERIC[(bits % 62) as usize]));
        bits /= 62;
    }
    text
}

/// An Okta object id: a 3-character type prefix and 17 alphanumerics (20 in all).
fn okta_id(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    format!("{prefix}{}", alphanumeric(rng, 17))
}

/// A lower-case 8-4-4-4-12 uuid, as Okta's LogEvent `uuid`.
fn uuid(rng: &mut ChaCha8Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An address inside one of the network's prefixes.
fn ip_in(rng: &mut ChaCha8Rng, net: &Network) -> String {
    let (a, b) = net.prefixes[rng.random_range(0..net.prefixes.len())];
    format!(
        "{a}.{b}.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(1..=254u8)
    )
}

/// Okta's `published` format: UTC with milliseconds and a `Z`.
fn timestamp(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Midnight UTC of simulated day `day` in milliseconds, or `None` past the calendar's end.
fn day_start_ms(cfg: &SimConfig, day: u32) -> Option<i64> {
    let date = cfg.start.checked_add_days(Days::new(u64::from(day)))?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn last_day(cfg: &SimConfig) -> Option<i64> {
    day_start_ms(cfg, cfg.days.checked_sub(1)?)
}

// ---------------------------------------------------------------------------------------------
// Event construction
// ---------------------------------------------------------------------------------------------

/// Everything that varies between events; [`Generator::emit`] fills in the rest.
struct Draft<'a> {
    at_ms: i64,
    event_type: &'static str,
    display_message: &'static str,
    legacy_event_type: Option<&'static str>,
    severity: &'static str,
    actor: Value,
    origin: Origin<'a>,
    result: &'static str,
    reason: Option<&'static str>,
    session_id: Option<&'a str>,
    credential_type: Option<&'static str>,
    request_uri: &'static str,
    debug: Vec<(&'static str, String)>,
    targets: Vec<Value>,
}

impl<'a> Draft<'a> {
    fn new(at_ms: i64, event_type: &'static str, actor: Value, origin: Origin<'a>) -> Self {
        Draft {
            at_ms,
            event_type,
            display_message: "",
            legacy_event_type: None,
            severity: "INFO",
            actor,
            origin,
            result: "SUCCESS",
            reason: None,
            session_id: None,
            credential_type: None,
            request_uri: "/idp/idx/identify",
            debug: Vec::new(),
            targets: Vec::new(),
        }
    }
}

fn user_actor(user: &SimUser) -> Value {
    json!({
        "id": user.id,
        "type": "User",
        "alternateId": user.login,
        "displayName": user.display_name,
        "detailEntry": null,
    })
}

fn user_target(user: &SimUser) -> Value {
    target(&user.id, "User", &user.login, &user.display_name)
}

fn target(id: &str, kind: &str, alternate_id: &str, display_name: &str) -> Value {
    json!({
        "id": id,
        "type": kind,
        "alternateId": alternate_id,
        "displayName": display_name,
        "detailEntry": null,
    })
}

/// Okta's behaviour summary for a sign-in: every behaviour NEGATIVE except the listed ones.
fn behaviors(positive: &[&str]) -> String {
    const ALL: [&str; 7] = [
        "New Geo-Location",
        "New Device",
        "New IP",
        "New State",
        "New Country",
        "Velocity",
        "New City",
    ];
    let parts: Vec<String> = ALL
        .iter()
        .map(|name| {
            let verdict = if positive.contains(name) {
                "POSITIVE"
            } else {
                "NEGATIVE"
            };
            format!("{name}={verdict}")
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Collects events and hands out the random ids they carry.
struct Generator {
    rng: ChaCha8Rng,
    /// (published ms, generation order, event): sorting on the first two gives the output order.
    events: Vec<(i64, usize, Value)>,
}

impl Generator {
    /// Turns a draft into a LogEvent, stores it and returns its uuid.
    fn emit(&mut self, draft: Draft<'_>) -> String {
        let uuid = uuid(&mut self.rng);
        let request_id = alphanumeric(&mut self.rng, 27);
        let numeric_fields = self.rng.random_bool(NUMERIC_FIELD_SHARE);
        let origin = draft.origin;
        let place = origin.place;
        let postal_code = match place.postal_code.parse::<u64>() {
            // A number only where it round-trips to the same text (no leading zero).
            Ok(number) if numeric_fields && !place.postal_code.starts_with('0') => json!(number),
            _ => json!(place.postal_code),
        };
        let geo = |postal_code: Value| {
            json!({
                "city": place.city,
                "state": place.state,
                "country": place.country,
                "postalCode": postal_code,
                "geolocation": {"lat": place.lat, "lon": place.lon},
            })
        };
        let mut debug_data = Map::new();
        debug_data.insert("requestId".into(), json!(request_id));
        debug_data.insert("requestUri".into(), json!(draft.request_uri));
        debug_data.insert("url".into(), json!(format!("{}?", draft.request_uri)));
        for (key, value) in draft.debug {
            debug_data.insert(key.into(), Value::String(value));
        }
        let external_session_id = draft
            .session_id
            .map_or_else(|| "unknown".to_owned(), str::to_owned);
        let event = json!({
            "uuid": uuid,
            "published": timestamp(draft.at_ms),
            "eventType": draft.event_type,
            "version": if numeric_fields { json!(0) } else { json!("0") },
            "severity": draft.severity,
            "legacyEventType": draft.legacy_event_type,
            "displayMessage": draft.display_message,
            "actor": draft.actor,
            "client": {
                "userAgent": {
                    "rawUserAgent": origin.device.raw_user_agent,
                    "os": origin.device.os,
                    "browser": origin.device.browser,
                },
                "zone": "null",
                "device": origin.device.kind,
                "id": null,
                "ipAddress": origin.ip,
                "geographicalContext": geo(postal_code),
            },
            "device": null,
            "authenticationContext": {
                "authenticationProvider": null,
                "credentialProvider": null,
                "credentialType": draft.credential_type,
                "issuer": null,
                "interface": null,
                "authenticationStep": 0,
                "externalSessionId": external_session_id,
            },
            "outcome": {"result": draft.result, "reason": draft.reason},
            "securityContext": {
                "asNumber": origin.net.as_number,
                "asOrg": origin.net.as_org,
                "isp": origin.net.isp,
                "domain": origin.net.domain,
                "isProxy": origin.net.is_proxy,
            },
            "debugContext": {"debugData": debug_data},
            "transaction": {"type": "WEB", "id": request_id, "detail": {}},
            "request": {
                "ipChain": [{
                    "ip": origin.ip,
                    "geographicalContext": geo(json!(place.postal_code)),
                    "version": "V4",
                    "source": null,
                }],
            },
            "target": if draft.targets.is_empty() { Value::Null } else { Value::Array(draft.targets) },
        });
        let order = self.events.len();
        self.events.push((draft.at_ms, order, event));
        uuid
    }

    /// A successful sign-in: sign-on policy, (push), MFA, session start. Returns the
    /// `user.session.start` time and the uuids of the flow's events in order.
    fn sign_in(
        &mut self,
        org: &Org,
        user: &SimUser,
        origin: Origin<'_>,
        at_ms: i64,
        session_id: &str,
        signals: &SignInSignals,
    ) -> (i64, Vec<String>) {
        let mut uuids = Vec::with_capacity(4);
        let mut eval = Draft::new(at_ms, "policy.evaluate_sign_on", user_actor(user), origin);
        eval.display_message = "Evaluation of sign-on policy";
        eval.result = "CHALLENGE";
        eval.reason = Some("Sign-on policy evaluation resulted in CHALLENGE");
        eval.session_id = Some(session_id);
        eval.debug = signals.debug();
        eval.targets = vec![
            target(
                &org.session_policy_id,
                "PolicyEntity",
                "unknown",
                "Global Session Policy",
            ),
            target(&org.mfa_rule_id, "PolicyRule", "unknown", "Require MFA"),
        ];
        uuids.push(self.emit(eval));
        let mfa_at = if user.push {
            let push_at = at_ms + self.rng.random_range(800..2_500);
            uuids.push(self.push(user, origin, push_at, session_id));
            push_at + self.rng.random_range(5 * SECOND..25 * SECOND)
        } else {
            at_ms + self.rng.random_range(15 * SECOND..40 * SECOND)
        };
        uuids.push(self.mfa_success(user, origin, mfa_at, session_id));
        let start_at = mfa_at + self.rng.random_range(300..900);
        let mut start = Draft::new(start_at, "user.session.start", user_actor(user), origin);
        start.display_message = "User login to Okta";
        start.legacy_event_type = Some("core.user_auth.login_success");
        start.session_id = Some(session_id);
        start.credential_type = Some("PASSWORD");
        start.debug = signals.debug();
        uuids.push(self.emit(start));
        (start_at, uuids)
    }

    fn push(&mut self, user: &SimUser, origin: Origin<'_>, at_ms: i64, session_id: &str) -> String {
        let mut push = Draft::new(
            at_ms,
            "system.push.send_factor_verify_push",
            user_actor(user),
            origin,
        );
        push.display_message = "Push notification sent for verification";
        push.session_id = Some(session_id);
        push.request_uri = "/idp/idx/challenge";
        push.targets = vec![factor_target(user, true)];
        self.emit(push)
    }

    fn mfa_success(
        &mut self,
        user: &SimUser,
        origin: Origin<'_>,
        at_ms: i64,
        session_id: &str,
    ) -> String {
        let mut mfa = Draft::new(
            at_ms,
            "user.authentication.auth_via_mfa",
            user_actor(user),
            origin,
        );
        mfa.display_message = "Authentication of user via MFA";
        mfa.legacy_event_type = Some("core.user.factor.attempt_success");
        mfa.session_id = Some(session_id);
        mfa.credential_type = Some("OTP");
        mfa.request_uri = "/idp/idx/challenge/answer";
        mfa.debug = vec![(
            "factor",
            if user.push {
                "OKTA_VERIFY_PUSH"
            } else {
                "OKTA_VERIFY_TOTP"
            }
            .to_owned(),
        )];
        mfa.targets = vec![factor_target(user, user.push)];
        self.emit(mfa)
    }

    /// A failed password: `user.session.start` FAILURE `INVALID_CREDENTIALS`.
    fn failed_password(
        &mut self,
        user: &SimUser,
        origin: Origin<'_>,
        at_ms: i64,
        signals: &SignInSignals,
    ) -> String {
        let mut fail = Draft::new(at_ms, "user.session.start", user_actor(user), origin);
        fail.display_message = "User login to Okta";
        fail.legacy_event_type = Some("core.user_auth.login_failed");
        fail.severity = "WARN";
        fail.result = "FAILURE";
        fail.reason = Some("INVALID_CREDENTIALS");
        fail.credential_type = Some("PASSWORD");
        fail.debug = signals.debug();
        self.emit(fail)
    }

    fn sso(
        &mut self,
        org: &Org,
        user: &SimUser,
        origin: Origin<'_>,
        at_ms: i64,
        session_id: &str,
        slot: usize,
    ) -> String {
        let app = user.apps[slot];
        let (name, _, mode) = APPS[app];
        let mut sso = Draft::new(at_ms, "user.authentication.sso", user_actor(user), origin);
        sso.display_message = "User single sign on to app";
        sso.legacy_event_type = Some("app.auth.sso");
        sso.session_id = Some(session_id);
        sso.request_uri = "/app/sso";
        sso.debug = vec![
            ("initiationType", "IDP_INITIATED".to_owned()),
            ("signOnMode", mode.to_owned()),
        ];
        sso.targets = vec![
            target(&org.app_ids[app], "AppInstance", name, name),
            target(
                &user.app_user_ids[slot],
                "AppUser",
                &user.login,
                &user.display_name,
            ),
        ];
        self.emit(sso)
    }
}

fn factor_target(user: &SimUser, push: bool) -> Value {
    let (method_type, method) = if push {
        ("Get a push notification", "OKTA_VERIFY_PUSH")
    } else {
        ("Enter a code", "OKTA_VERIFY_TOTP")
    };
    json!({
        "id": user.factor_id,
        "type": "AuthenticatorEnrollment",
        "alternateId": "unknown",
        "displayName": "Okta Verify",
        "detailEntry": {"methodTypeUsed": method_type, "methodUsed": method},
    })
}

/// What Okta's risk engine says about a sign-in.
struct SignInSignals {
    threat_suspected: bool,
    risk: &'static str,
    positive_behaviors: &'static [&'static str],
}

impl SignInSignals {
    const BENIGN: SignInSignals = SignInSignals {
        threat_suspected: false,
        risk: "{level=LOW}",
        positive_behaviors: &[],
    };

    fn debug(&self) -> Vec<(&'static str, String)> {
        vec![
            ("threatSuspected", self.threat_suspected.to_string()),
            ("risk", self.risk.to_owned()),
            ("behaviors", behaviors(self.positive_behaviors)),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/// What the benign pass remembers about each user's last day, for placing attacks.
#[derive(Debug, Clone, Default)]
struct LastDay {
    window: (i64, i64),
    /// Times of benign failed sign-ins.
    failures: Vec<i64>,
    /// (time, uuid) of benign successful `user.session.start`s.
    sign_ins: Vec<(i64, String)>,
}

/// Generates the traffic of `cfg`: benign days for every user, then the injected attacks.
pub fn generate(cfg: &SimConfig) -> Simulation {
    let (org, users) = population(cfg);
    let mut sink = Generator {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6576_656e_7473_5f31),
        events: Vec::with_capacity(cfg.users * cfg.days as usize * 36),
    };
    let mut last_days = vec![LastDay::default(); users.len()];
    for day in 0..cfg.days {
        let Some(day_ms) = day_start_ms(cfg, day) else {
            break;
        };
        let is_last = day + 1 == cfg.days;
        for (user, last_day) in users.iter().zip(last_days.iter_mut()) {
            let record = benign_day(&mut sink, &org, user, day_ms);
            if is_last {
                *last_day = record;
            }
        }
    }
    let mut attacks = cfg.attacks.clone();
    attacks.sort_unstable();
    attacks.dedup();
    let injected = if users.is_empty() || last_day(cfg).is_none() {
        Vec::new()
    } else {
        inject_attacks(cfg, &mut sink, &org, &users, &last_days, &attacks)
    };
    let mut events = sink.events;
    events.sort_by_key(|(at_ms, order, _)| (*at_ms, *order));
    Simulation {
        events: events.into_iter().map(|(_, _, event)| event).collect(),
        injected,
    }
}

/// One benign working day of one user; returns what attack placement needs to know.
fn benign_day(sink: &mut Generator, org: &Org, user: &SimUser, day_ms: i64) -> LastDay {
    let offset = user.home.utc_offset_min;
    let start_local = user.work_start_min + sink.rng.random_range(-5..=5);
    let end_local = start_local + user.work_len_min + sink.rng.random_range(-5..=5);
    let window_start = day_ms + (start_local - offset) * MINUTE;
    let window_end = day_ms + (end_local - offset) * MINUTE;
    let mut record = LastDay {
        window: (window_start, window_end),
        ..LastDay::default()
    };

    // A VPN user goes through the VPN for the whole day or not at all, so no day mixes two routes.
    let use_vpn = user.vpn && sink.rng.random_bool(0.5);
    let vpn_ip = ip_in(&mut sink.rng, user.vpn_net);
    let (ip, place, net) = if use_vpn {
        (vpn_ip.as_str(), user.vpn_place, user.vpn_net)
    } else {
        (user.home_ip.as_str(), user.home, user.home_net)
    };
    let first_device = user.devices[sink.rng.random_range(0..user.devices.len())];
    let second_device = user.devices[sink.rng.random_range(0..user.devices.len())];
    let origin_one = Origin {
        ip,
        place,
        net,
        device: first_device,
    };
    let origin_two = Origin {
        device: second_device,
        ..origin_one
    };

    // First sign-in, possibly after one password typo.
    let mut attempt_at = window_start + sink.rng.random_range(0..20 * MINUTE);
    if sink.rng.random_bool(0.03) {
        sink.failed_password(user, origin_one, attempt_at, &SignInSignals::BENIGN);
        record.failures.push(attempt_at);
        attempt_at += MINUTE + sink.rng.random_range(0..20 * SECOND);
    }
    let session_one = format!("102{}", alphanumeric(&mut sink.rng, 22));
    let (first_start, flow) = sink.sign_in(
        org,
        user,
        origin_one,
        attempt_at,
        &session_one,
        &SignInSignals::BENIGN,
    );
    if let Some(uuid) = flow.last() {
        record.sign_ins.push((first_start, uuid.clone()));
    }

    // The SSO/activity period ends a quarter hour before the window closes, leaving room for logout.
    let activity_end = window_end - 15 * MINUTE;
    let second = if sink.rng.random_bool(0.4) {
        let span = (window_end - window_start) as f64;
        let at = window_start + (span * sink.rng.random_range(0.45..0.6)) as i64;
        // The first session sometimes ends explicitly before the second sign-in.
        let end_of_first = if sink.rng.random_bool(0.5) {
            let end_at = at - sink.rng.random_range(MINUTE..30 * MINUTE);
            let mut end = Draft::new(end_at, "user.session.end", user_actor(user), origin_one);
            end.display_message = "User logout from Okta";
            end.legacy_event_type = Some("core.user_auth.logout_success");
            end.session_id = Some(&session_one);
            end.request_uri = "/login/signout";
            sink.emit(end);
            Some(end_at)
        } else {
            None
        };
        let session_two = format!("102{}", alphanumeric(&mut sink.rng, 22));
        let (start, flow) = sink.sign_in(
            org,
            user,
            origin_two,
            at,
            &session_two,
            &SignInSignals::BENIGN,
        );
        if let Some(uuid) = flow.last() {
            record.sign_ins.push((start, uuid.clone()));
        }
        Some((start, end_of_first, session_two))
    } else {
        None
    };

    // Activity happens in a session: after its start and, for the first session, before its end.
    let activity_from = first_start + 30 * SECOND;
    let activity_time = |sink: &mut Generator| -> (i64, bool) {
        for _ in 0..8 {
            let at = sink.rng.random_range(activity_from..activity_end);
            match &second {
                Some((start, end_of_first, _)) if at >= start + 30 * SECOND => return (at, true),
                Some((start, end_of_first, _)) => {
                    let open = end_of_first.is_none_or(|end| at < end) && at < *start;
                    if open {
                        return (at, false);
                    }
                }
                None => return (at, false),
            }
        }
        (activity_from, false)
    };
    let session_for = |in_second: bool| -> (&str, Origin<'_>) {
        match (&second, in_second) {
            (Some((_, _, session_two)), true) => (session_two.as_str(), origin_two),
            _ => (session_one.as_str(), origin_one),
        }
    };
    let sso_count = sink.rng.random_range(5..=25);
    for _ in 0..sso_count {
        let (at, in_second) = activity_time(sink);
        let slot = sink.rng.random_range(0..user.apps.len());
        let (session, origin) = session_for(in_second);
        sink.sso(org, user, origin, at, session, slot);
    }
    if sink.rng.random_bool(0.3) {
        for _ in 0..sink.rng.random_range(1..=2) {
            let (at, in_second) = activity_time(sink);
            let (session, origin) = session_for(in_second);
            let app = user.apps[0];
            let mut grant = Draft::new(at, "app.oauth2.token.grant", user_actor(user), origin);
            grant.display_message = "OAuth2 access token is granted";
            grant.session_id = Some(session);
            grant.request_uri = "/oauth2/v1/token";
            grant.credential_type = Some("OAuth 2.0");
            grant.debug = vec![
                ("grantType", "authorization_code".to_owned()),
                ("grantedScopes", "openid, profile, email".to_owned()),
            ];
            let token_id = format!("AT.{}", alphanumeric(&mut sink.rng, 40));
            grant.targets = vec![
                target(&org.app_ids[app], "AppInstance", APPS[app].0, APPS[app].0),
                json!({
                    "id": token_id,
                    "type": "access_token",
                    "alternateId": "unknown",
                    "displayName": "Access Token",
                    "detailEntry": {"expires": timestamp(at + 60 * MINUTE), "subject": user.id},
                }),
            ];
            sink.emit(grant);
        }
    }
    if sink.rng.random_bool(0.2) {
        let (at, in_second) = activity_time(sink);
        let (session, origin) = session_for(in_second);
        let mut verify = Draft::new(at, "user.authentication.verify", user_actor(user), origin);
        verify.display_message = "Verify user identity";
        verify.session_id = Some(session);
        verify.credential_type = Some("OTP");
        verify.request_uri = "/idp/idx/challenge/answer";
        verify.targets = vec![user_target(user), factor_target(user, user.push)];
        sink.emit(verify);
    }
    if sink.rng.random_bool(0.4) {
        let at = activity_end + sink.rng.random_range(0..15 * MINUTE);
        let (session, origin) = session_for(second.is_some());
        let mut end = Draft::new(at, "user.session.end", user_actor(user), origin);
        end.display_message = "User logout from Okta";
        end.legacy_event_type = Some("core.user_auth.logout_success");
        end.session_id = Some(session);
        end.request_uri = "/login/signout";
        sink.emit(end);
    }
    record
}

/// Chooses targets and injects every attack on the last day.
fn inject_attacks(
    cfg: &SimConfig,
    sink: &mut Generator,
    org: &Org,
    users: &[SimUser],
    last_days: &[LastDay],
    attacks: &[Attack],
) -> Vec<InjectedAttack> {
    // A separate stream, so target choice does not depend on how much benign traffic there was.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6174_7461_636b_7331);
    let mut order: Vec<usize> = (0..users.len()).collect();
    order.shuffle(&mut rng);
    // VPN users are chosen last: their home sign-in next to a VPN day would blur the scenarios.
    order.sort_by_key(|&index| users[index].vpn);
    let mut taken = vec![false; users.len()];
    let mut pick = |wanted: &dyn Fn(&SimUser) -> bool| -> usize {
        let choice = order
            .iter()
            .copied()
            .find(|&i| !taken[i] && wanted(&users[i]))
            .or_else(|| order.iter().copied().find(|&i| !taken[i]))
            .unwrap_or(order[0]);
        taken[choice] = true;
        choice
    };
    let plans: Vec<(Attack, usize)> = attacks
        .iter()
        .map(|&attack| {
            let target = match attack {
                Attack::MfaFatigue => pick(&|user: &SimUser| user.push),
                _ => pick(&|_: &SimUser| true),
            };
            (attack, target)
        })
        .collect();
    // Bystanders of the admin backdoor, then spray victims, come from the users left.
    let mut bystanders: Vec<usize> = order.iter().copied().filter(|&i| !taken[i]).collect();
    let mut injected = Vec::with_capacity(plans.len());
    for (attack, target) in plans {
        let (window_start, window_end) = last_days[target].window;
        let span = (window_end - window_start) as f64;
        let at = window_start + (span * rng.random_range(0.25..0.55)) as i64;
        let scenario = Scenario {
            org,
            user: &users[target],
            at,
        };
        let (event_uuids, related_uuids) = match attack {
            Attack::CredentialStuffing => {
                // Victims whose own typo falls near the spray are skipped, so each victim has
                // exactly one failure in any 10-minute window around the spray.
                let victims: Vec<&SimUser> = bystanders
                    .iter()
                    .copied()
                    .filter(|&i| {
                        last_days[i]
                            .failures
                            .iter()
                            .all(|&fail| (fail - at).abs() > 20 * MINUTE)
                    })
                    .take(20)
                    .map(|i| &users[i])
                    .collect();
                scenario.credential_stuffing(sink, &mut rng, &victims)
            }
            Attack::MfaFatigue => scenario.mfa_fatigue(sink, &mut rng),
            Attack::SessionTheft => scenario.session_theft(sink, &mut rng),
            Attack::UserReported => {
                let reported = last_days[target]
                    .sign_ins
                    .iter()
                    .rev()
                    .find(|(signed_in, _)| *signed_in < at)
                    .map(|(_, uuid)| uuid.clone());
                scenario.user_reported(sink, &mut rng, reported)
            }
            Attack::AdminBackdoor => {
                let mut other = || {
                    // From the end of the list, away from the spray victims at its front.
                    bystanders.pop().unwrap_or_else(|| {
                        // Tiny populations: the first user who is not the admin.
                        (0..users.len()).find(|&i| i != target).unwrap_or(target)
                    })
                };
                let promoted = &users[other()];
                let reset = &users[other()];
                scenario.admin_backdoor(sink, &mut rng, promoted, reset)
            }
        };
        injected.push(InjectedAttack {
            attack,
            user_id: users[target].id.clone(),
            user_login: users[target].login.clone(),
            event_uuids,
            related_uuids,
        });
    }
    injected
}

/// One attack against one user at one time.
struct Scenario<'a> {
    org: &'a Org,
    user: &'a SimUser,
    at: i64,
}

impl Scenario<'_> {
    fn home<'b>(&'b self, device: &'b Device) -> Origin<'b> {
        Origin {
            ip: &self.user.home_ip,
            place: self.user.home,
            net: self.user.home_net,
            device,
        }
    }

    /// 20 sprays within 3 minutes, then 4 failures against the target within 6 minutes.
    fn credential_stuffing(
        &self,
        sink: &mut Generator,
        rng: &mut ChaCha8Rng,
        victims: &[&SimUser],
    ) -> (Vec<String>, Vec<String>) {
        let ip = ip_in(rng, &STUFFING_NETWORK);
        let origin = Origin {
            ip: &ip,
            place: &STUFFING_PLACE,
            net: &STUFFING_NETWORK,
            device: &STUFFING_DEVICE,
        };
        let signals = SignInSignals {
            threat_suspected: true,
            risk: "{reasons=Anomalous Location, Suspected Password Spray, level=HIGH}",
            positive_behaviors: &[
                "New Geo-Location",
                "New Device",
                "New IP",
                "New State",
                "New Country",
                "New City",
            ],
        };
        let mut sprays = Vec::with_capacity(victims.len());
        for (index, victim) in victims.iter().enumerate() {
            // 9 s apart plus up to 3 s: the 20th lands before 174 s.
            let at = self.at + index as i64 * 9 * SECOND + rng.random_range(0..3 * SECOND);
            sprays.push(sink.failed_password(victim, origin, at, &signals));
        }
        let mut failures = Vec::with_capacity(4);
        for attempt in 0..4 {
            // From 4 minutes after the spray began, 100 s apart: the 4 span at most 310 s.
            let at =
                self.at + 4 * MINUTE + attempt * 100 * SECOND + rng.random_range(0..10 * SECOND);
            failures.push(sink.failed_password(self.user, origin, at, &signals));
        }
        (failures, sprays)
    }

    /// Policy evaluation, 8 pushes 45 s apart, 6 denials, then an approved push and a session.
    fn mfa_fatigue(
        &self,
        sink: &mut Generator,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<String>, Vec<String>) {
        let ip = ip_in(rng, &FATIGUE_NETWORK);
        let origin = Origin {
            ip: &ip,
            place: &FATIGUE_PLACE,
            net: &FATIGUE_NETWORK,
            device: &FATIGUE_DEVICE,
        };
        let session = format!("102{}", alphanumeric(rng, 22));
        let signals = SignInSignals {
            threat_suspected: false,
            risk: "{reasons=Anomalous Location, Anomalous Device, level=HIGH}",
            positive_behaviors: &[
                "New Geo-Location",
                "New Device",
                "New IP",
                "New State",
                "New Country",
                "New City",
                "Velocity",
            ],
        };
        let mut uuids = Vec::with_capacity(17);
        let mut eval = Draft::new(
            self.at,
            "policy.evaluate_sign_on",
            user_actor(self.user),
            origin,
        );
        eval.display_message = "Evaluation of sign-on policy";
        eval.result = "CHALLENGE";
        eval.reason = Some("Sign-on policy evaluation resulted in CHALLENGE");
        eval.session_id = Some(&session);
        eval.debug = signals.debug();
        eval.targets = vec![
            target(
                &self.org.session_policy_id,
                "PolicyEntity",
                "unknown",
                "Global Session Policy",
            ),
            target(
                &self.org.mfa_rule_id,
                "PolicyRule",
                "unknown",
                "Require MFA",
            ),
        ];
        uuids.push(sink.emit(eval));
        let mut last_push = self.at;
        for push in 0..8 {
            last_push = self.at + 2 * SECOND + push * 45 * SECOND;
            uuids.push(sink.push(self.user, origin, last_push, &session));
            // The user denies the first six, ignores the seventh and approves the eighth.
            if push < 6 {
                let deny_at = last_push + rng.random_range(10 * SECOND..25 * SECOND);
                let mut deny = Draft::new(
                    deny_at,
                    "user.mfa.okta_verify.deny_push",
                    user_actor(self.user),
                    origin,
                );
                deny.display_message = "User rejected Okta push verify";
                deny.legacy_event_type = Some("core.user.factor.attempt_fail");
                deny.severity = "WARN";
                deny.result = "FAILURE";
                deny.reason = Some("User rejected Okta push verify");
                deny.session_id = Some(&session);
                deny.request_uri = "/idp/idx/authenticators/poll";
                deny.debug = vec![("factor", "OKTA_VERIFY_PUSH".to_owned())];
                deny.targets = vec![factor_target(self.user, true)];
                uuids.push(sink.emit(deny));
            }
        }
        let mfa_at = last_push + 20 * SECOND;
        uuids.push(sink.mfa_success(self.user, origin, mfa_at, &session));
        let mut start = Draft::new(
            mfa_at + 700,
            "user.session.start",
            user_actor(self.user),
            origin,
        );
        start.display_message = "User login to Okta";
        start.legacy_event_type = Some("core.user_auth.login_success");
        start.session_id = Some(&session);
        start.credential_type = Some("PASSWORD");
        start.debug = signals.debug();
        uuids.push(sink.emit(start));
        // Emitted in time order: each denial falls between its push and the next one.
        (uuids, Vec::new())
    }

    /// A normal home sign-in, then the same session from Lagos 40 minutes later, then 3 SSOs.
    fn session_theft(
        &self,
        sink: &mut Generator,
        rng: &mut ChaCha8Rng,
    ) -> (Vec<String>, Vec<String>) {
        let home = self.home(self.user.devices[0]);
        let session = format!("102{}", alphanumeric(rng, 22));
        let (signed_in, related) = sink.sign_in(
            self.org,
            self.user,
            home,
            self.at,
            &session,
            &SignInSignals::BENIGN,
        );
        let ip = ip_in(rng, &THEFT_NETWORK);
        let origin = Origin {
            ip: &ip,
            place: &THEFT_PLACE,
            net: &THEFT_NETWORK,
            device: &THEFT_DEVICE,
        };
        let signals = SignInSignals {
            threat_suspected: false,
            risk: "{reasons=Anomalous Location, Impossible Travel, level=HIGH}",
            positive_behaviors: &[
                "New Geo-Location",
                "New Device",
                "New IP",
                "New State",
                "New Country",
                "New City",
                "Velocity",
            ],
        };
        let theft_at = signed_in + 40 * MINUTE;
        let mut start = Draft::new(
            theft_at,
            "user.session.start",
            user_actor(self.user),
            origin,
        );
        start.display_message = "User login to Okta";
        start.legacy_event_type = Some("core.user_auth.login_success");
        start.session_id = Some(&session);
        start.credential_type = Some("PASSWORD");
        start.debug = signals.debug();
        let mut uuids = vec![sink.emit(start)];
        for (slot, delay) in [2, 6, 11].into_iter().enumerate() {
            let slot = slot % self.user.apps.len();
            uuids.push(sink.sso(
                self.org,
                self.user,
                origin,
                theft_at + delay * MINUTE,
                &session,
                slot,
            ));
        }
        (uuids, related)
    }

    /// The target reports their own most recent sign-in as suspicious.
    fn user_reported(
        &self,
        sink: &mut Generator,
        rng: &mut ChaCha8Rng,
        reported: Option<String>,
    ) -> (Vec<String>, Vec<String>) {
        let device = self.user.devices[0];
        let home = self.home(device);
        let reported = reported.unwrap_or_else(|| uuid(rng));
        let mut report = Draft::new(
            self.at,
            "user.account.report_suspicious_activity_by_enduser",
            user_actor(self.user),
            home,
        );
        report.display_message = "User report suspicious activity";
        report.severity = "WARN";
        report.request_uri = "/api/v1/users/me/suspicious-activity";
        report.debug = vec![
            ("suspiciousActivityEventId", reported),
            (
                "suspiciousActivityEventType",
                "user.session.start".to_owned(),
            ),
            ("suspiciousActivityBrowser", device.browser.to_owned()),
            ("suspiciousActivityOs", device.os.to_owned()),
            ("suspiciousActivityEventIp", self.user.home_ip.clone()),
            (
                "suspiciousActivityEventCity",
                self.user.home.city.to_owned(),
            ),
            (
                "suspiciousActivityEventState",
                self.user.home.state.to_owned(),
            ),
            (
                "suspiciousActivityEventCountry",
                self.user.home.country.to_owned(),
            ),
        ];
        report.targets = vec![user_target(self.user)];
        (vec![sink.emit(report)], Vec::new())
    }

    /// Eight configuration changes within 10 minutes by a compromised administrator.
    fn admin_backdoor(
        &self,
        sink: &mut Generator,
        rng: &mut ChaCha8Rng,
        promoted: &SimUser,
        reset: &SimUser,
    ) -> (Vec<String>, Vec<String>) {
        let home = self.home(self.user.devices[0]);
        let actor = || user_actor(self.user);
        let mut uuids = Vec::with_capacity(8);

        let mut grant = Draft::new(self.at, "user.account.privilege.grant", actor(), home);
        grant.display_message = "Grant user privilege";
        grant.request_uri = "/api/v1/users/roles";
        grant.debug = vec![("privilegeGranted", "Super administrator".to_owned())];
        grant.targets = vec![user_target(promoted)];
        uuids.push(sink.emit(grant));

        let token_id = okta_id(rng, "00T");
        let mut token = Draft::new(
            self.at + 70 * SECOND,
            "system.api_token.create",
            actor(),
            home,
        );
        token.display_message = "Create API token";
        token.request_uri = "/api/internal/tokens";
        token.debug = vec![("tokenScope", "unscoped".to_owned())];
        token.targets = vec![target(&token_id, "Token", "unknown", "sync-automation")];
        uuids.push(sink.emit(token));

        let mut impersonation = Draft::new(
            self.at + 150 * SECOND,
            "user.session.impersonation.grant",
            actor(),
            home,
        );
        impersonation.display_message = "Enable impersonation grant";
        impersonation.request_uri = "/api/internal/support/access";
        impersonation.debug = vec![("grantDurationHours", "8".to_owned())];
        impersonation.targets = vec![target(&self.org.org_id, "Org", ORG_HOST, "Example Org")];
        uuids.push(sink.emit(impersonation));

        let stream_id = okta_id(rng, "0Ox");
        let mut stream = Draft::new(
            self.at + 240 * SECOND,
            "system.log_stream.lifecycle.deactivate",
            actor(),
            home,
        );
        stream.display_message = "Deactivate log stream";
        stream.severity = "WARN";
        stream.request_uri = "/api/v1/logStreams/deactivate";
        stream.debug = vec![("logStreamType", "splunk_cloud_logstreaming".to_owned())];
        stream.targets = vec![target(&stream_id, "LogStream", "unknown", "SIEM export")];
        uuids.push(sink.emit(stream));

        let mut threat = Draft::new(
            self.at + 320 * SECOND,
            "security.threat.configuration.update",
            actor(),
            home,
        );
        threat.display_message = "Update ThreatInsight configuration";
        threat.severity = "WARN";
        threat.request_uri = "/api/v1/threats/configuration";
        threat.debug = vec![
            ("threatInsightActionBefore", "block".to_owned()),
            ("threatInsightActionAfter", "audit".to_owned()),
            (
                "changedAttributes",
                "action: block -> audit (log only, no blocking)".to_owned(),
            ),
        ];
        threat.targets = vec![target(
            "threatinsight",
            "ThreatInsightConfiguration",
            "unknown",
            "ThreatInsight",
        )];
        uuids.push(sink.emit(threat));

        let idp_id = okta_id(rng, "0oa");
        let mut idp = Draft::new(
            self.at + 400 * SECOND,
            "system.idp.lifecycle.create",
            actor(),
            home,
        );
        idp.display_message = "Create Identity Provider";
        idp.request_uri = "/api/v1/idps";
        idp.debug = vec![("idpType", "SAML2".to_owned())];
        idp.targets = vec![target(
            &idp_id,
            "IdentityProvider",
            "unknown",
            "Partner SSO",
        )];
        uuids.push(sink.emit(idp));

        let mut rule = Draft::new(
            self.at + 470 * SECOND,
            "policy.rule.deactivate",
            actor(),
            home,
        );
        rule.display_message = "Deactivate policy rule";
        rule.severity = "WARN";
        rule.request_uri = "/api/v1/policies/rules/lifecycle/deactivate";
        rule.debug = vec![("policyType", "OKTA_SIGN_ON".to_owned())];
        rule.targets = vec![
            target(
                &self.org.mfa_rule_id,
                "PolicyRule",
                "unknown",
                "Require MFA",
            ),
            target(
                &self.org.session_policy_id,
                "PolicyEntity",
                "unknown",
                "Global Session Policy",
            ),
        ];
        uuids.push(sink.emit(rule));

        let mut factors = Draft::new(
            self.at + 540 * SECOND,
            "user.mfa.factor.reset_all",
            actor(),
            home,
        );
        factors.display_message = "Reset all factors for user";
        factors.severity = "WARN";
        factors.request_uri = "/api/v1/users/factors/reset";
        factors.targets = vec![user_target(reset)];
        uuids.push(sink.emit(factors));

        (uuids, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn config(users: usize, days: u32, seed: u64, attacks: &[Attack]) -> SimConfig {
        SimConfig {
            users,
            days,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            seed,
            attacks: attacks.to_vec(),
        }
    }

    fn ndjson(sim: &Simulation, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_events(&sim.events, OutputFormat::Ndjson, seed, &mut out).unwrap();
        out
    }

    fn field<'a>(event: &'a Value, path: &str) -> &'a Value {
        path.split('.').fold(event, |value, key| &value[key])
    }

    fn text<'a>(event: &'a Value, path: &str) -> &'a str {
        field(event, path).as_str().unwrap_or("")
    }

    fn ms(event: &Value) -> i64 {
        DateTime::parse_from_rfc3339(text(event, "published"))
            .unwrap()
            .timestamp_millis()
    }

    fn by_uuid(sim: &Simulation) -> BTreeMap<&str, &Value> {
        sim.events
            .iter()
            .map(|event| (text(event, "uuid"), event))
            .collect()
    }

    fn lookup<'a>(index: &BTreeMap<&str, &'a Value>, uuids: &[String]) -> Vec<&'a Value> {
        uuids.iter().map(|uuid| index[uuid.as_str()]).collect()
    }

    /// Local minute of the day of an event for a user living at `place`.
    fn local_minute(event: &Value, place: &Place) -> i64 {
        (ms(event) / MINUTE + place.utc_offset_min).rem_euclid(24 * 60)
    }

    fn homes(cfg: &SimConfig) -> BTreeMap<String, SimUser> {
        population(cfg)
            .1
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect()
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_another_seed_differs() {
        let cfg = config(150, 2, 7, &Attack::ALL);
        let first = ndjson(&generate(&cfg), 7);
        let second = ndjson(&generate(&cfg), 7);
        assert_eq!(first, second);
        let other = config(150, 2, 8, &Attack::ALL);
        assert_ne!(first, ndjson(&generate(&other), 8));
        for format in [OutputFormat::Array, OutputFormat::Hook] {
            let sim = generate(&cfg);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_events(&sim.events, format, 7, &mut a).unwrap();
            write_events(&generate(&cfg).events, format, 7, &mut b).unwrap();
            assert_eq!(a, b);
        }
        assert_eq!(generate(&cfg).injected, generate(&cfg).injected);
    }

    #[test]
    fn every_event_is_well_formed_sorted_and_of_a_known_type() {
        let sim = generate(&config(200, 2, 42, &Attack::ALL));
        let mut uuids = BTreeSet::new();
        let mut seen_types = BTreeSet::new();
        let mut previous = i64::MIN;
        for event in &sim.events {
            let uuid = text(event, "uuid");
            assert_eq!(uuid.len(), 36, "{uuid}");
            assert_eq!(uuid.matches('-').count(), 4);
            assert!(uuids.insert(uuid.to_owned()), "duplicate uuid {uuid}");
            let published = text(event, "published");
            assert_eq!(published.len(), 24, "{published}");
            assert!(published.ends_with('Z'));
            let at = ms(event);
            assert!(at >= previous, "events out of order at {published}");
            previous = at;
            let event_type = text(event, "eventType");
            assert!(EMITTED_EVENT_TYPES.contains(&event_type), "{event_type}");
            seen_types.insert(event_type.to_owned());
            assert!(
                matches!(
                    event["version"],
                    Value::String(ref v) if v == "0"
                ) || event["version"] == json!(0)
            );
            assert!(["DEBUG", "INFO", "WARN", "ERROR"].contains(&text(event, "severity")));
            assert_eq!(text(event, "actor.type"), "User");
            assert!(text(event, "actor.id").starts_with("00u"));
            assert_eq!(text(event, "actor.id").len(), 20);
            assert!(text(event, "actor.alternateId").ends_with("@example.com"));
            assert!(!text(event, "client.userAgent.rawUserAgent").is_empty());
            assert!(!text(event, "client.ipAddress").is_empty());
            assert!(field(event, "client.geographicalContext.geolocation.lat").is_f64());
            assert!(field(event, "securityContext.asNumber").is_u64());
            assert!(field(event, "securityContext.isProxy").is_boolean());
            assert_eq!(text(event, "transaction.type"), "WEB");
            assert_eq!(
                text(event, "transaction.id"),
                text(event, "debugContext.debugData.requestId")
            );
            assert_eq!(
                field(event, "request.ipChain")[0]["ip"],
                event["client"]["ipAddress"]
            );
            assert!(!text(event, "outcome.result").is_empty());
            assert!(event["target"].is_null() || event["target"].is_array());
            for target in event["target"].as_array().into_iter().flatten() {
                for key in ["id", "type", "alternateId", "displayName"] {
                    assert!(target[key].is_string(), "target {key} in {event}");
                }
            }
        }
        // With every attack injected, every listed type is exercised.
        let listed: BTreeSet<String> = EMITTED_EVENT_TYPES.iter().map(|t| t.to_string()).collect();
        assert_eq!(seen_types, listed);
    }

    #[test]
    fn a_small_share_of_events_has_numeric_version_and_postal_code() {
        let sim = generate(&config(300, 1, 42, &[]));
        let numeric = sim
            .events
            .iter()
            .filter(|e| e["version"].is_number())
            .count();
        let share = numeric as f64 / sim.events.len() as f64;
        assert!((0.01..0.03).contains(&share), "share {share}");
        let numeric_postal = sim
            .events
            .iter()
            .filter(|e| field(e, "client.geographicalContext.postalCode").is_number())
            .count();
        assert!(numeric_postal > 0 && numeric_postal <= numeric);
        // A numeric postal code is only ever written when it reads back as the same text.
        for event in sim.events.iter().filter(|e| e["version"].is_string()) {
            assert!(field(event, "client.geographicalContext.postalCode").is_string());
        }
    }

    #[test]
    fn benign_traffic_contains_no_attack_pattern() {
        let cfg = config(400, 3, 42, &[]);
        let sim = generate(&cfg);
        assert!(sim.injected.is_empty());
        let users = homes(&cfg);
        let benign_types = [
            "policy.evaluate_sign_on",
            "system.push.send_factor_verify_push",
            "user.authentication.auth_via_mfa",
            "user.session.start",
            "user.authentication.sso",
            "user.session.end",
            "app.oauth2.token.grant",
            "user.authentication.verify",
        ];
        let mut failures: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut pushes: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut sign_ins: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
        let mut typos = 0;
        let mut vpn_sign_ins = 0;
        for event in &sim.events {
            let event_type = text(event, "eventType");
            assert!(benign_types.contains(&event_type), "{event_type}");
            let user = &users[text(event, "actor.id")];
            let minute = local_minute(event, user.home);
            assert!(
                (8 * 60..18 * 60).contains(&minute),
                "{event_type} at local {}:{:02} for {}",
                minute / 60,
                minute % 60,
                user.login
            );
            assert_eq!(
                text(event, "client.geographicalContext.country"),
                user.home.country
            );
            assert_eq!(
                text(event, "debugContext.debugData.threatSuspected"),
                if event_type == "user.session.start" || event_type == "policy.evaluate_sign_on" {
                    "false"
                } else {
                    ""
                }
            );
            assert_eq!(field(event, "securityContext.isProxy"), &json!(false));
            let asn = field(event, "securityContext.asNumber").as_u64().unwrap();
            let result = text(event, "outcome.result");
            if result == "FAILURE" {
                assert_eq!(event_type, "user.session.start");
                assert_eq!(text(event, "outcome.reason"), "INVALID_CREDENTIALS");
                failures.entry(&user.id).or_default().push(ms(event));
                typos += 1;
            }
            if event_type == "system.push.send_factor_verify_push" {
                assert!(user.push);
                pushes.entry(&user.id).or_default().push(ms(event));
            }
            if event_type == "user.session.start" && result == "SUCCESS" {
                sign_ins.entry(&user.id).or_default().push((ms(event), asn));
                if CORPORATE_VPN_ASNS.contains(&asn) {
                    assert!(user.vpn);
                    vpn_sign_ins += 1;
                } else {
                    assert_eq!(asn, user.home_net.as_number);
                }
            }
        }
        assert!(typos > 0, "the typo path is exercised");
        assert!(vpn_sign_ins > 0, "the VPN path is exercised");
        for times in failures.values() {
            for pair in times.windows(2) {
                assert!(
                    pair[1] - pair[0] >= 10 * MINUTE,
                    "two failures within 10 minutes"
                );
            }
        }
        for times in pushes.values() {
            for pair in times.windows(2) {
                assert!(pair[1] - pair[0] >= 10 * MINUTE, "push burst");
            }
        }
        // Home and VPN sign-ins are never less than 8 hours apart.
        for list in sign_ins.values() {
            for pair in list.windows(2) {
                if pair[0].1 != pair[1].1 {
                    assert!(pair[1].0 - pair[0].0 >= 8 * 60 * MINUTE);
                }
            }
        }
    }

    #[test]
    fn attacks_only_add_events() {
        let benign = generate(&config(120, 2, 3, &[]));
        let attacked = generate(&config(120, 2, 3, &Attack::ALL));
        let mut attack_uuids: BTreeSet<&str> = BTreeSet::new();
        for injected in &attacked.injected {
            attack_uuids.extend(injected.event_uuids.iter().map(String::as_str));
            attack_uuids.extend(injected.related_uuids.iter().map(String::as_str));
        }
        let remaining: Vec<&Value> = attacked
            .events
            .iter()
            .filter(|e| !attack_uuids.contains(text(e, "uuid")))
            .collect();
        assert_eq!(remaining, benign.events.iter().collect::<Vec<_>>());
    }

    fn only(attack: Attack) -> (SimConfig, Simulation, InjectedAttack) {
        let cfg = config(200, 2, 11, &[attack]);
        let sim = generate(&cfg);
        assert_eq!(sim.injected.len(), 1);
        let injected = sim.injected[0].clone();
        assert_eq!(injected.attack, attack);
        (cfg, sim, injected)
    }

    fn assert_in_order(events: &[&Value]) {
        for pair in events.windows(2) {
            assert!(ms(pair[0]) <= ms(pair[1]));
        }
    }

    fn last_day_window(cfg: &SimConfig, user: &SimUser, event: &Value) {
        let day = last_day(cfg).unwrap();
        assert!(ms(event) >= day && ms(event) < day + 36 * 60 * MINUTE);
        let minute = local_minute(event, user.home);
        assert!(
            (8 * 60..18 * 60).contains(&minute),
            "attack at local minute {minute}"
        );
    }

    #[test]
    fn credential_stuffing_pattern() {
        let (cfg, sim, injected) = only(Attack::CredentialStuffing);
        let users = homes(&cfg);
        let index = by_uuid(&sim);
        let targets = lookup(&index, &injected.event_uuids);
        let sprays = lookup(&index, &injected.related_uuids);
        assert_eq!(targets.len(), 4);
        assert_eq!(sprays.len(), 20);
        assert_in_order(&targets);
        assert_in_order(&sprays);
        last_day_window(&cfg, &users[&injected.user_id], sprays[0]);
        let ip = text(sprays[0], "client.ipAddress");
        for event in targets.iter().chain(&sprays) {
            assert_eq!(text(event, "eventType"), "user.session.start");
            assert_eq!(text(event, "outcome.result"), "FAILURE");
            assert_eq!(text(event, "outcome.reason"), "INVALID_CREDENTIALS");
            assert_eq!(
                text(event, "debugContext.debugData.threatSuspected"),
                "true"
            );
            assert_eq!(text(event, "client.ipAddress"), ip);
            assert_eq!(field(event, "securityContext.asNumber"), &json!(14061));
            assert_eq!(field(event, "securityContext.isProxy"), &json!(true));
            assert_eq!(
                text(event, "client.geographicalContext.country"),
                "Netherlands"
            );
        }
        let victims: BTreeSet<&str> = sprays.iter().map(|e| text(e, "actor.id")).collect();
        assert_eq!(victims.len(), 20);
        assert!(!victims.contains(injected.user_id.as_str()));
        assert!(ms(sprays[19]) - ms(sprays[0]) < 3 * MINUTE);
        assert!(ms(targets[0]) > ms(sprays[19]));
        assert!(ms(targets[3]) - ms(targets[0]) < 6 * MINUTE);
        for event in &targets {
            assert_eq!(text(event, "actor.id"), injected.user_id);
            assert_eq!(text(event, "actor.alternateId"), injected.user_login);
        }
        // Each victim has exactly one failed sign-in within 10 minutes of its spray.
        for spray in &sprays {
            let victim = text(spray, "actor.id");
            let nearby = sim
                .events
                .iter()
                .filter(|e| text(e, "actor.id") == victim && text(e, "outcome.result") == "FAILURE")
                .filter(|e| (ms(e) - ms(spray)).abs() < 10 * MINUTE)
                .count();
            assert_eq!(nearby, 1);
        }
    }

    #[test]
    fn mfa_fatigue_pattern() {
        let (cfg, sim, injected) = only(Attack::MfaFatigue);
        let users = homes(&cfg);
        assert!(users[&injected.user_id].push);
        let events = lookup(&by_uuid(&sim), &injected.event_uuids);
        assert_in_order(&events);
        assert!(injected.related_uuids.is_empty());
        let types: Vec<&str> = events.iter().map(|e| text(e, "eventType")).collect();
        assert_eq!(types.len(), 17);
        assert_eq!(types[0], "policy.evaluate_sign_on");
        let pushes: Vec<&&Value> = events
            .iter()
            .filter(|e| text(e, "eventType") == "system.push.send_factor_verify_push")
            .collect();
        assert_eq!(pushes.len(), 8);
        assert!(ms(pushes[7]) - ms(pushes[0]) < 6 * MINUTE);
        let denies: Vec<&&Value> = events
            .iter()
            .filter(|e| text(e, "eventType") == "user.mfa.okta_verify.deny_push")
            .collect();
        assert_eq!(denies.len(), 6);
        for deny in &denies {
            assert_eq!(text(deny, "outcome.result"), "FAILURE");
            assert_eq!(
                text(deny, "outcome.reason"),
                "User rejected Okta push verify"
            );
        }
        assert_eq!(types[15], "user.authentication.auth_via_mfa");
        assert_eq!(text(events[15], "outcome.result"), "SUCCESS");
        assert_eq!(types[16], "user.session.start");
        assert_eq!(text(events[16], "outcome.result"), "SUCCESS");
        assert!(ms(events[16]) - ms(events[0]) < 6 * MINUTE);
        for event in &events {
            assert_eq!(text(event, "actor.id"), injected.user_id);
            assert_eq!(text(event, "client.geographicalContext.country"), "Romania");
            assert_eq!(field(event, "securityContext.asNumber"), &json!(8708));
        }
        last_day_window(&cfg, &users[&injected.user_id], events[0]);
    }

    #[test]
    fn session_theft_pattern() {
        let (cfg, sim, injected) = only(Attack::SessionTheft);
        let users = homes(&cfg);
        let user = &users[&injected.user_id];
        let index = by_uuid(&sim);
        let home = lookup(&index, &injected.related_uuids);
        let theft = lookup(&index, &injected.event_uuids);
        let home_start = home[home.len() - 1];
        assert_eq!(text(home_start, "eventType"), "user.session.start");
        assert_eq!(text(home_start, "outcome.result"), "SUCCESS");
        assert_eq!(
            text(home_start, "client.geographicalContext.country"),
            user.home.country
        );
        last_day_window(&cfg, user, home_start);
        assert_eq!(theft.len(), 4);
        assert_eq!(text(theft[0], "eventType"), "user.session.start");
        assert_eq!(text(theft[0], "outcome.result"), "SUCCESS");
        assert_eq!(ms(theft[0]) - ms(home_start), 40 * MINUTE);
        let session = text(home_start, "authenticationContext.externalSessionId");
        for event in &theft {
            assert_eq!(text(event, "client.geographicalContext.country"), "Nigeria");
            assert_eq!(field(event, "securityContext.asNumber"), &json!(29465));
            assert_ne!(
                text(event, "client.userAgent.rawUserAgent"),
                text(home_start, "client.userAgent.rawUserAgent")
            );
            assert_eq!(
                text(event, "authenticationContext.externalSessionId"),
                session
            );
            assert_eq!(text(event, "actor.id"), injected.user_id);
        }
        for event in &theft[1..] {
            assert_eq!(text(event, "eventType"), "user.authentication.sso");
        }
        assert_in_order(&theft);
    }

    #[test]
    fn user_reported_pattern() {
        let (cfg, sim, injected) = only(Attack::UserReported);
        let index = by_uuid(&sim);
        let events = lookup(&index, &injected.event_uuids);
        assert_eq!(events.len(), 1);
        let report = events[0];
        assert_eq!(
            text(report, "eventType"),
            "user.account.report_suspicious_activity_by_enduser"
        );
        assert_eq!(text(report, "outcome.result"), "SUCCESS");
        assert_eq!(text(report, "actor.id"), injected.user_id);
        assert_eq!(report["target"][0]["id"], json!(injected.user_id));
        assert_eq!(report["target"][0]["type"], json!("User"));
        assert_eq!(
            text(report, "debugContext.debugData.suspiciousActivityEventType"),
            "user.session.start"
        );
        let reported = index[text(report, "debugContext.debugData.suspiciousActivityEventId")];
        assert_eq!(text(reported, "eventType"), "user.session.start");
        assert_eq!(text(reported, "actor.id"), injected.user_id);
        last_day_window(&cfg, &homes(&cfg)[&injected.user_id], report);
    }

    #[test]
    fn admin_backdoor_pattern() {
        let (cfg, sim, injected) = only(Attack::AdminBackdoor);
        let events = lookup(&by_uuid(&sim), &injected.event_uuids);
        let types: Vec<&str> = events.iter().map(|e| text(e, "eventType")).collect();
        assert_eq!(
            types,
            [
                "user.account.privilege.grant",
                "system.api_token.create",
                "user.session.impersonation.grant",
                "system.log_stream.lifecycle.deactivate",
                "security.threat.configuration.update",
                "system.idp.lifecycle.create",
                "policy.rule.deactivate",
                "user.mfa.factor.reset_all",
            ]
        );
        assert_in_order(&events);
        assert!(ms(events[7]) - ms(events[0]) < 10 * MINUTE);
        for event in &events {
            assert_eq!(text(event, "actor.id"), injected.user_id);
            assert_eq!(text(event, "outcome.result"), "SUCCESS");
        }
        assert_eq!(
            text(events[0], "debugContext.debugData.privilegeGranted"),
            "Super administrator"
        );
        for (index, kind) in [
            (0, "User"),
            (1, "Token"),
            (5, "IdentityProvider"),
            (7, "User"),
        ] {
            assert_eq!(events[index]["target"][0]["type"], json!(kind));
        }
        assert_ne!(events[0]["target"][0]["id"], json!(injected.user_id));
        assert_ne!(events[7]["target"][0]["id"], json!(injected.user_id));
        assert_eq!(
            text(events[4], "debugContext.debugData.threatInsightActionAfter"),
            "audit"
        );
        last_day_window(&cfg, &homes(&cfg)[&injected.user_id], events[0]);
    }

    #[test]
    fn all_attacks_pick_distinct_targets_on_the_last_day() {
        let cfg = config(
            100,
            3,
            5,
            &[
                Attack::AdminBackdoor,
                Attack::MfaFatigue,
                Attack::AdminBackdoor,
            ],
        );
        assert_eq!(generate(&cfg).injected.len(), 2);
        let cfg = config(100, 3, 5, &Attack::ALL);
        let sim = generate(&cfg);
        let attacks: Vec<Attack> = sim.injected.iter().map(|i| i.attack).collect();
        assert_eq!(attacks, Attack::ALL);
        let targets: BTreeSet<&str> = sim.injected.iter().map(|i| i.user_id.as_str()).collect();
        assert_eq!(targets.len(), 5);
        let index = by_uuid(&sim);
        let last = last_day(&cfg).unwrap();
        for injected in &sim.injected {
            for event in lookup(&index, &injected.event_uuids) {
                assert!(ms(event) >= last);
            }
        }
    }

    #[test]
    fn tiny_populations_do_not_panic() {
        for users in [0, 1, 2, 3, 6, 25] {
            let sim = generate(&config(users, 1, 1, &Attack::ALL));
            if users == 0 {
                assert!(sim.events.is_empty() && sim.injected.is_empty());
            } else {
                assert_eq!(sim.injected.len(), 5);
            }
        }
        assert!(generate(&config(10, 0, 1, &Attack::ALL)).events.is_empty());
    }

    #[test]
    fn output_formats_parse_back_to_the_events() {
        let sim = generate(&config(60, 1, 9, &Attack::ALL));
        assert!(sim.events.len() > 2 * HOOK_BATCH);

        let mut out = Vec::new();
        write_events(&sim.events, OutputFormat::Ndjson, 9, &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines, sim.events);

        let mut out = Vec::new();
        write_events(&sim.events, OutputFormat::Array, 9, &mut out).unwrap();
        let array: Vec<Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(array, sim.events);

        let mut out = Vec::new();
        write_events(&sim.events, OutputFormat::Hook, 9, &mut out).unwrap();
        let mut events = Vec::new();
        let mut ids = BTreeSet::new();
        for line in String::from_utf8(out).unwrap().lines() {
            let envelope: Value = serde_json::from_str(line).unwrap();
            assert_eq!(envelope["eventType"], "com.okta.event_hook");
            assert_eq!(envelope["eventTypeVersion"], "1.0");
            assert_eq!(envelope["cloudEventsVersion"], "0.1");
            assert_eq!(envelope["contentType"], "application/json");
            assert!(text(&envelope, "source").starts_with("https://example.okta.com/"));
            assert!(ids.insert(text(&envelope, "eventId").to_owned()));
            let batch = envelope["data"]["events"].as_array().unwrap();
            assert!(!batch.is_empty() && batch.len() <= HOOK_BATCH);
            assert_eq!(envelope["eventTime"], batch[batch.len() - 1]["published"]);
            events.extend(batch.iter().cloned());
        }
        assert_eq!(events, sim.events);
    }

    #[test]
    fn a_thousand_users_generate_a_working_day_with_every_attack() {
        // No timing here: tests on a shared machine cannot measure speed (the replay bench does).
        let sim = generate(&config(1_000, 1, 42, &Attack::ALL));
        assert!(sim.events.len() > 20_000, "{} events", sim.events.len());
        assert_eq!(sim.injected.len(), 5);
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn command_line_defaults_and_attack_selection() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["vigil"]).unwrap();
        let cfg = SimConfig::from(&cli.args);
        assert_eq!(cfg, config(100, 1, 42, &[]));
        assert_eq!(cli.args.format, OutputFormat::Ndjson);
        assert!(cli.args.out.is_none() && cli.args.manifest.is_none());

        let cli = Cli::try_parse_from([
            "vigil",
            "--users",
            "5",
            "--days",
            "2",
            "--start",
            "2026-01-31",
            "--seed",
            "9",
            "--attack",
            "mfa-fatigue",
            "--attack",
            "session-theft",
            "--format",
            "hook",
        ])
        .unwrap();
        let cfg = SimConfig::from(&cli.args);
        assert_eq!(cfg.users, 5);
        assert_eq!(cfg.days, 2);
        assert_eq!(cfg.start, NaiveDate::from_ymd_opt(2026, 1, 31).unwrap());
        assert_eq!(cfg.attacks, [Attack::MfaFatigue, Attack::SessionTheft]);
        assert_eq!(cli.args.format, OutputFormat::Hook);

        let cli = Cli::try_parse_from(["vigil", "--attack", "all"]).unwrap();
        assert_eq!(SimConfig::from(&cli.args).attacks, Attack::ALL);
        assert!(Cli::try_parse_from(["vigil", "--attack", "phishing"]).is_err());
        assert!(Cli::try_parse_from(["vigil", "--start", "2026-13-01"]).is_err());
        assert_eq!(
            serde_json::to_value(Attack::ALL).unwrap(),
            json!(Attack::ALL.map(Attack::name))
        );
    }

    #[test]
    fn run_writes_events_and_manifest() {
        let dir = std::env::temp_dir().join(format!("vigil-simulate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("events.ndjson");
        let manifest = dir.join("manifest.json");
        let args = SimulateArgs {
            users: 30,
            days: 1,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            seed: 4,
            attacks: vec![AttackChoice::All],
            format: OutputFormat::Ndjson,
            out: Some(out.clone()),
            manifest: Some(manifest.clone()),
        };
        run(&args).unwrap();
        let sim = generate(&SimConfig::from(&args));
        assert_eq!(std::fs::read(&out).unwrap(), ndjson(&sim, 4));
        let written: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        assert_eq!(
            written["injected"],
            serde_json::to_value(&sim.injected).unwrap()
        );
        assert_eq!(written["injected"][0]["attack"], "credential-stuffing");
        assert_eq!(written["events"], json!(sim.events.len()));
        assert!(run(&SimulateArgs {
            users: 0,
            ..args.clone()
        })
        .is_err());
        assert!(run(&SimulateArgs { days: 0, ..args }).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
