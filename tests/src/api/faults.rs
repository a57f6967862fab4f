//! Fault injection: a seeded random fraction of requests answered 409/429/500 or delayed, and
//! watches dropped early. Off by default; changed at runtime through [`Faults::set`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::status::ApiError;

/// What to inject.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Seed of the random generator (same seed, same request order -> same faults).
    pub seed: u64,
    /// Fraction (0..=1) of resource requests answered with an error.
    pub error_rate: f64,
    /// Which codes to answer, chosen at random: 409 applies to writes only, 429 and 500 to all.
    pub error_codes: Vec<u16>,
    /// Fraction of requests delayed by `delay`.
    pub delay_rate: f64,
    /// How long a delayed request waits.
    pub delay: Duration,
    /// Fraction of watches that end early (after a random time up to `watch_drop_after`).
    pub watch_drop_rate: f64,
    /// Upper bound of how long a dropped watch lives.
    pub watch_drop_after: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            error_rate: 0.0,
            error_codes: vec![409, 429, 500],
            delay_rate: 0.0,
            delay: Duration::from_millis(200),
            watch_drop_rate: 0.0,
            watch_drop_after: Duration::from_secs(2),
        }
    }
}

/// The runtime fault-injection handle.
#[derive(Debug)]
pub struct Faults {
    config: RwLock<FaultConfig>,
    rng: Mutex<StdRng>,
    injected: AtomicU64,
}

/// What to do to one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub delay: Option<Duration>,
    pub error: Option<ApiError>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self {
            config: RwLock::new(config),
            rng: Mutex::new(rng),
            injected: AtomicU64::new(0),
        }
    }

    /// Replace the configuration (and reseed).
    pub fn set(&self, config: FaultConfig) {
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = StdRng::seed_from_u64(config.seed);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Turn every fault off.
    pub fn disable(&self) {
        self.set(FaultConfig::default());
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    pub(crate) fn decide(&self, write: bool) -> Decision {
        let cfg = self.config();
        if cfg.error_rate <= 0.0 && cfg.delay_rate <= 0.0 {
            return Decision::default();
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = Decision::default();
        if cfg.delay_rate > 0.0 && rng.random::<f64>() < cfg.delay_rate {
            d.delay = Some(cfg.delay);
        }
        if cfg.error_rate > 0.0 && rng.random::<f64>() < cfg.error_rate {
            let codes: Vec<u16> = cfg
                .error_codes
                .iter()
                .copied()
                .filter(|c| write || *c != 409)
                .collect();
            if !codes.is_empty() {
                let code = codes[rng.random_range(0..codes.len())];
                d.error = Some(match code {
                    409 => ApiError::conflict("", "injected", "fault", "injected conflict"),
                    429 => ApiError::too_many_requests(),
                    _ => ApiError::internal("injected fault"),
                });
            }
        }
        if d.delay.is_some() || d.error.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        d
    }

    /// When a new watch should be dropped, if at all.
    pub(crate) fn watch_drop(&self) -> Option<Duration> {
        let cfg = self.config();
        if cfg.watch_drop_rate <= 0.0 {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.random::<f64>() < cfg.watch_drop_rate {
            self.injected.fetch_add(1, Ordering::Relaxed);
            let max = cfg.watch_drop_after.as_millis().max(1) as u64;
            Some(Duration::from_millis(rng.random_range(0..max)))
        } else {
            None
        }
    }
}
