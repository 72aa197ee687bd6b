//! Differential privacy: noise on every entry instead of suppression, and the
//! privacy budget that limits how much a peer can learn per period.
//!
//! **Neighbouring tables** differ by one counted unit (a case for case units, a
//! person record for victims and suspects, a measure entry for protection
//! measures). A unit adds 1 to one entry of every marginal pattern per
//! combination of its values, so the L1 sensitivity of the whole table (cells
//! and every marginal) is `Π_d (1 + c_d)`, where `c_d` is the most values a
//! unit can hold in dimension `d`: 1 for a single-valued dimension, 8 for a
//! person's nationalities, otherwise the size of the dimension's public value
//! list. Every touched entry changes by exactly 1, so the squared L2
//! sensitivity is the same number. (A person recorded in several cases is
//! several units; the guarantee is per record.)
//!
//! **Public value lists.** Noise is added to every value of each dimension's
//! public list — the code list (vocabulary, ISO 3166, ICCS, ethnicity lists),
//! the years and quarters of the period, or the filter's values — whether it
//! occurs or not, so which values appear reveals nothing. Values outside those
//! lists are not released in this mode (totals still count their units).
//!
//! **Mechanisms.** Discrete Laplace noise with scale `Δ₁/ε` gives ε-DP;
//! discrete Gaussian noise with `σ² = Δ₂²/(2ρ)`, `ρ = (√(ln(1/δ) + ε) − √ln(1/δ))²`
//! gives ρ-zCDP and so (ε, δ)-DP (Canonne, Kamath, Steinke 2020, Prop. 1.6 and
//! Lemma 3.5). Both are sampled exactly with integer arithmetic (their
//! Algorithms 1–3), ε rounded down to a multiple of 2⁻²⁰ and σ² rounded up to a
//! multiple of 2⁻¹⁶, so floating point never weakens the guarantee. Noisy
//! counts below 0 become 0 and all are rounded down to the resolution
//! (post-processing, which costs no privacy).

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    count::{RawTable, MAX_NATIONALITIES},
    spec::{Dimension, TableSpec, AGE_BANDS, MAX_DIMENSIONS, UNKNOWN},
    suppress::{round_down, Cell, Method, ProtectError, ProtectedTable, Rules},
    table::{Axis, Shape},
};
use crate::{
    identity::NodeId,
    model::{vocab, ProceduralStatus},
};

/// The noise distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Discrete Laplace (two-sided geometric): pure ε-DP.
    Laplace,
    /// Discrete Gaussian: (ε, δ)-DP.
    DiscreteGaussian,
}

/// Smallest ε accepted for one release.
pub const MIN_EPSILON: f64 = 0.001;
/// Largest ε accepted for one release.
pub const MAX_EPSILON: f64 = 10.0;
/// Largest noise variance accepted (σ ≤ 10⁶).
const MAX_SIGMA2: f64 = 1e12;
/// ε is handled as a multiple of 2⁻²⁰.
const EPSILON_DENOMINATOR: u64 = 1 << 20;
/// σ² is handled as a multiple of 2⁻¹⁶.
const SIGMA2_DENOMINATOR: u64 = 1 << 16;

/// Differential-privacy parameters of one release.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Privacy {
    mechanism: Mechanism,
    epsilon: f64,
    delta: f64,
    resolution: u64,
}

impl Privacy {
    /// Discrete Laplace noise with privacy loss `epsilon`.
    pub fn laplace(epsilon: f64, resolution: u64) -> Result<Privacy, ProtectError> {
        Privacy::new(Mechanism::Laplace, epsilon, 0.0, resolution)
    }

    /// Discrete Gaussian noise with privacy loss `(epsilon, delta)`.
    pub fn gaussian(epsilon: f64, delta: f64, resolution: u64) -> Result<Privacy, ProtectError> {
        if !(delta > 0.0 && delta < 1.0) {
            return Err(ProtectError::Privacy(format!(
                "delta {delta} must be above 0 and below 1"
            )));
        }
        Privacy::new(Mechanism::DiscreteGaussian, epsilon, delta, resolution)
    }

    fn new(
        mechanism: Mechanism,
        epsilon: f64,
        delta: f64,
        resolution: u64,
    ) -> Result<Privacy, ProtectError> {
        if !(MIN_EPSILON..=MAX_EPSILON).contains(&epsilon) {
            return Err(ProtectError::Privacy(format!(
                "epsilon {epsilon} must be from {MIN_EPSILON} to {MAX_EPSILON}"
            )));
        }
        if resolution == 0 {
            return Err(ProtectError::Resolution);
        }
        Ok(Privacy {
            mechanism,
            epsilon,
            delta,
            resolution,
        })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Privacy loss ε.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// Privacy loss δ (0 for Laplace).
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// Checks that a table of `spec` can be released with these parameters
    /// (its public value lists fit, the noise is not absurd). Call it before
    /// spending budget.
    pub fn check(&self, spec: &TableSpec) -> Result<(), ProtectError> {
        let domains = domains(spec);
        let lens: Vec<usize> = domains.iter().map(Vec::len).collect();
        Shape::new(&lens).ok_or(ProtectError::TooLarge)?;
        self.noise(sensitivity(spec, &lens)).map(|_| ())
    }

    /// The calibrated noise for a table of L1 sensitivity `delta1`.
    fn noise(&self, delta1: u64) -> Result<Noise, ProtectError> {
        // ε rounded down: the noise is at least as wide as asked.
        let s = ((self.epsilon * EPSILON_DENOMINATOR as f64).floor() as u64).max(1);
        match self.mechanism {
            Mechanism::Laplace => Ok(Noise::Laplace {
                t: u128::from(delta1) * u128::from(EPSILON_DENOMINATOR),
                s: u128::from(s),
                epsilon: s as f64 / EPSILON_DENOMINATOR as f64,
            }),
            Mechanism::DiscreteGaussian => {
                let l = (1.0 / self.delta).ln();
                let rho = ((l + self.epsilon).sqrt() - l.sqrt()).powi(2);
                let sigma2 = delta1 as f64 / (2.0 * rho);
                if !(sigma2.is_finite() && sigma2 <= MAX_SIGMA2) {
                    return Err(ProtectError::Privacy(format!(
                        "the noise would have a standard deviation of {:.0}; use fewer dimensions or a larger epsilon",
                        sigma2.sqrt()
                    )));
                }
                let num = (sigma2 * SIGMA2_DENOMINATOR as f64).ceil() as u128;
                let sigma2 = num as f64 / SIGMA2_DENOMINATOR as f64;
                Ok(Noise::Gaussian {
                    num,
                    den: u128::from(SIGMA2_DENOMINATOR),
                    t: sigma2.sqrt().floor() as u128 + 1,
                    sigma: sigma2.sqrt(),
                })
            }
        }
    }
}

enum Noise {
    /// Discrete Laplace of scale `t/s`.
    Laplace { t: u128, s: u128, epsilon: f64 },
    /// Discrete Gaussian of variance `num/den`; `t = ⌊σ⌋ + 1`.
    Gaussian {
        num: u128,
        den: u128,
        t: u128,
        sigma: f64,
    },
}

impl Noise {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> i128 {
        match *self {
            Noise::Laplace { t, s, .. } => discrete_laplace(rng, t, s),
            Noise::Gaussian { num, den, t, .. } => discrete_gaussian(rng, num, den, t),
        }
    }
}

/// Bernoulli(exp(−num/den)) for `num/den` in [0, 1] (CKS Algorithm 1).
fn bernoulli_exp_unit<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let mut k: u128 = 1;
    // A ~ Bernoulli(γ/k) until A = 0.
    while let Some(range) = den.checked_mul(k) {
        if rng.gen_range(0..range) >= num {
            break;
        }
        k += 1;
    }
    k % 2 == 1
}

/// Bernoulli(exp(−num/den)) for any `num/den ≥ 0`.
fn bernoulli_exp<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let mut whole = num / den;
    while whole > 0 {
        if !bernoulli_exp_unit(rng, 1, 1) {
            return false;
        }
        whole -= 1;
    }
    bernoulli_exp_unit(rng, num % den, den)
}

/// A sample of the discrete Laplace distribution of scale `t/s`:
/// P(x) ∝ exp(−|x|·s/t) (CKS Algorithm 2).
fn discrete_laplace<R: Rng + ?Sized>(rng: &mut R, t: u128, s: u128) -> i128 {
    loop {
        let u = rng.gen_range(0..t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_unit(rng, 1, 1) {
            v += 1;
        }
        let y = (u + t * v) / s;
        let negative: bool = rng.gen();
        if negative && y == 0 {
            continue;
        }
        let y = i128::try_from(y).unwrap_or(i128::MAX);
        return if negative { -y } else { y };
    }
}

/// A sample of the discrete Gaussian of variance `num/den`, `t = ⌊σ⌋ + 1`
/// (CKS Algorithm 3).
fn discrete_gaussian<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128, t: u128) -> i128 {
    loop {
        let y = discrete_laplace(rng, t, 1);
        // Accept with probability exp(−(|y| − σ²/t)² / 2σ²)
        //   = exp(−(|y|·t·den − num)² / (2·num·den·t²)).
        let accept = (|| {
            let a = y.unsigned_abs().checked_mul(t)?.checked_mul(den)?;
            let diff = a.abs_diff(num);
            let top = diff.checked_mul(diff)?;
            let bottom = 2u128
                .checked_mul(num)?
                .checked_mul(den)?
                .checked_mul(t * t)?;
            Some(bernoulli_exp(rng, top, bottom))
        })();
        if accept == Some(true) {
            return y;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use rand::Rng;

    /// Discrete Laplace of scale `t/s`.
    pub(crate) fn laplace<R: Rng>(rng: &mut R, t: u128, s: u128) -> i128 {
        super::discrete_laplace(rng, t, s)
    }

    /// Discrete Gaussian of variance `num/den`.
    pub(crate) fn gaussian<R: Rng>(rng: &mut R, num: u128, den: u128) -> i128 {
        let t = ((num as f64 / den as f64).sqrt().floor()) as u128 + 1;
        super::discrete_gaussian(rng, num, den, t)
    }
}

/// The public value lists of each dimension of `spec`, in display order.
pub(crate) fn domains(spec: &TableSpec) -> Vec<Vec<String>> {
    spec.dimensions()
        .iter()
        .map(|&d| {
            let mut values: Vec<String> = match spec.filters().get(&d) {
                Some(f) => f.iter().cloned().collect(),
                None => domain(spec, d),
            };
            if !values.iter().any(|v| v == UNKNOWN) && spec.filters().get(&d).is_none() {
                values.push(UNKNOWN.to_owned());
            }
            values.sort_by(|a, b| d.order_key(a).cmp(&d.order_key(b)));
            values
        })
        .collect()
}

fn codes(v: &vocab::Vocabulary) -> Vec<String> {
    v.codes().iter().map(|c| c.code.to_owned()).collect()
}

fn domain(spec: &TableSpec, d: Dimension) -> Vec<String> {
    let htcds = |name: &str| vocab::htcds(name).map(codes).unwrap_or_default();
    let (first, last) = spec.period().bounds();
    let (y0, y1) = (first / 10_000, last / 10_000);
    match d {
        Dimension::Sex => htcds("sex_gender"),
        Dimension::ExploitationType => htcds("exploitation"),
        Dimension::MigrationStatus => htcds("migration_status"),
        Dimension::AgeBand => AGE_BANDS.iter().map(|s| (*s).to_owned()).collect(),
        Dimension::ChildAdult => vec!["child".into(), "adult".into()],
        Dimension::Nationality => codes(&vocab::COUNTRIES),
        Dimension::Ethnicity => codes(&vocab::ETHNICITIES),
        Dimension::IccsCode => codes(&vocab::ICCS),
        Dimension::ProceduralStatus => ProceduralStatus::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        Dimension::Region => codes(&vocab::SUBDIVISIONS),
        Dimension::Year => (y0..=y1).map(|y| format!("{y:04}")).collect(),
        Dimension::Quarter => {
            let q = |day: u32| (day / 10_000, (day / 100 % 100 - 1) / 3 + 1);
            let (start, end) = (q(first), q(last));
            let mut out = Vec::new();
            let mut at = start;
            while at <= end {
                out.push(format!("{:04}-Q{}", at.0, at.1));
                at = if at.1 == 4 {
                    (at.0 + 1, 1)
                } else {
                    (at.0, at.1 + 1)
                };
            }
            out
        }
        Dimension::Route => {
            let mut sides = codes(&vocab::COUNTRIES);
            sides.push(UNKNOWN.to_owned());
            let mut out = Vec::with_capacity(sides.len() * sides.len());
            for o in &sides {
                for t in &sides {
                    if !(o == UNKNOWN && t == UNKNOWN) {
                        out.push(format!("{o}>{t}"));
                    }
                }
            }
            out
        }
    }
}

/// The L1 sensitivity (and squared L2 sensitivity) of a table of `spec` whose
/// dimensions have `lens` public values.
fn sensitivity(spec: &TableSpec, lens: &[usize]) -> u64 {
    let unit = spec.unit();
    spec.dimensions()
        .iter()
        .zip(lens)
        .map(|(&d, &n)| {
            let most = if !d.is_multi_valued(unit) {
                1
            } else if d == Dimension::Nationality && !unit.is_case() {
                n.min(MAX_NATIONALITIES)
            } else {
                n
            };
            1 + most as u64
        })
        .fold(1u64, u64::saturating_mul)
}

/// Budget spent for one release; only [`Budget::spend`] makes one, and
/// [`protect_private`] takes it, so nothing is released unaccounted.
#[must_use = "a spend is only useful for protect_private"]
#[derive(Debug)]
pub struct Spend {
    privacy: Privacy,
}

impl Spend {
    /// The parameters paid for.
    pub fn privacy(&self) -> &Privacy {
        &self.privacy
    }
}

/// Adds noise to every entry of `raw` over the public value lists, clamps at
/// 0 and rounds down (see the module documentation). Deterministic given
/// `rng`.
pub fn protect_private<R: Rng + ?Sized>(
    raw: &RawTable,
    spend: Spend,
    rng: &mut R,
) -> Result<ProtectedTable, ProtectError> {
    let privacy = spend.privacy;
    let spec = &raw.spec;
    let values = domains(spec);
    let lens: Vec<usize> = values.iter().map(Vec::len).collect();
    let shape = Shape::new(&lens).ok_or(ProtectError::TooLarge)?;
    let delta1 = sensitivity(spec, &lens);
    let noise = privacy.noise(delta1)?;
    // Where each observed value sits in the public list (None: not released).
    let map: Vec<Vec<Option<usize>>> = raw
        .axes
        .iter()
        .zip(&values)
        .map(|(axis, public)| {
            let at: HashMap<&str, usize> = public
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), i))
                .collect();
            axis.values
                .iter()
                .map(|v| at.get(v.as_str()).copied())
                .collect()
        })
        .collect();
    let k = shape.dims();
    let mut counts = vec![0u64; shape.size()];
    'entries: for (i, &n) in raw.entries.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let c = raw.shape.coords(i);
        let mut at = [0usize; MAX_DIMENSIONS];
        for d in 0..k {
            at[d] = if c[d] == raw.shape.len(d) {
                shape.len(d)
            } else {
                match map[d][c[d]] {
                    Some(p) => p,
                    None => continue 'entries,
                }
            };
        }
        counts[shape.index(&at[..k])] = n;
    }
    let cells = counts
        .iter()
        .map(|&n| {
            let noisy = (i128::from(n) + noise.sample(rng)).max(0);
            Cell::Count(round_down(
                u64::try_from(noisy).unwrap_or(u64::MAX),
                privacy.resolution,
            ))
        })
        .collect();
    let method = match noise {
        Noise::Laplace { epsilon, .. } => Method::Laplace {
            epsilon,
            sensitivity: delta1,
        },
        Noise::Gaussian { sigma, .. } => Method::DiscreteGaussian {
            epsilon: privacy.epsilon,
            delta: privacy.delta,
            sensitivity: delta1,
            sigma,
        },
    };
    let axes = spec
        .dimensions()
        .iter()
        .zip(values)
        .map(|(&dimension, values)| Axis { dimension, values })
        .collect();
    Ok(ProtectedTable {
        spec: spec.clone(),
        rules: Rules {
            method,
            resolution: privacy.resolution,
        },
        axes,
        shape,
        cells,
    })
}

/// ε is accounted in units of 10⁻⁹, δ in units of 10⁻¹⁵: integers, so that
/// no rounding lets spending exceed the budget.
const EPSILON_UNIT: f64 = 1e9;
const DELTA_UNIT: f64 = 1e15;

/// Why budget could not be spent.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BudgetError {
    /// The release would exceed the peer's budget for the period.
    #[error("privacy budget of {peer} for period {period} exhausted: epsilon {requested_epsilon} (delta {requested_delta}) asked, epsilon {remaining_epsilon} (delta {remaining_delta}) left")]
    Exhausted {
        /// The peer.
        peer: NodeId,
        /// The accounting period.
        period: String,
        /// ε asked.
        requested_epsilon: f64,
        /// δ asked.
        requested_delta: f64,
        /// ε left.
        remaining_epsilon: f64,
        /// δ left.
        remaining_delta: f64,
    },
    /// Limits out of range or a malformed period label.
    #[error("privacy budget: {0}")]
    Invalid(String),
}

/// What one peer has spent in one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The peer.
    pub peer: NodeId,
    /// The accounting period.
    pub period: String,
    /// ε spent.
    #[serde(with = "epsilon_units")]
    pub epsilon: u64,
    /// δ spent.
    #[serde(with = "delta_units")]
    pub delta: u64,
    /// Releases made.
    pub releases: u64,
}

/// Per-peer, per-period privacy budgets: pure accounting under basic
/// composition (ε and δ add up). The caller persists it (serde) durably
/// before releasing what it paid for, and chooses the period label (e.g. the
/// calendar year of the releases, `2026`). Budgets are per peer: peers that
/// pool their answers spend the sum of their budgets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(with = "epsilon_units")]
    epsilon_per_period: u64,
    #[serde(with = "delta_units")]
    delta_per_period: u64,
    #[serde(default)]
    accounts: Vec<Account>,
}

impl Budget {
    /// A budget of `epsilon` and `delta` for each peer in each period.
    pub fn new(epsilon: f64, delta: f64) -> Result<Budget, BudgetError> {
        if !(epsilon.is_finite() && epsilon > 0.0 && epsilon <= 1e6) {
            return Err(BudgetError::Invalid(format!(
                "epsilon per period {epsilon} must be above 0"
            )));
        }
        if !(0.0..1.0).contains(&delta) {
            return Err(BudgetError::Invalid(format!(
                "delta per period {delta} must be from 0 to below 1"
            )));
        }
        Ok(Budget {
            // Limits rounded down, costs rounded up.
            epsilon_per_period: (epsilon * EPSILON_UNIT).floor() as u64,
            delta_per_period: (delta * DELTA_UNIT).floor() as u64,
            accounts: Vec::new(),
        })
    }

    /// Spends `privacy`'s ε and δ from `peer`'s budget for `period`, or
    /// refuses, changing nothing, when either would exceed the budget.
    pub fn spend(
        &mut self,
        peer: &NodeId,
        period: &str,
        privacy: &Privacy,
    ) -> Result<Spend, BudgetError> {
        let label_ok = (1..=32).contains(&period.len())
            && period
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !label_ok {
            return Err(BudgetError::Invalid(format!(
                "period label {:?}: 1 to 32 letters, digits, '-', '_', '.' or ':'",
                period.chars().take(40).collect::<String>()
            )));
        }
        let cost_e = (privacy.epsilon * EPSILON_UNIT).ceil() as u64;
        let cost_d = (privacy.delta * DELTA_UNIT).ceil() as u64;
        let (spent_e, spent_d) = self.spent(peer, period);
        let fits = spent_e
            .checked_add(cost_e)
            .is_some_and(|e| e <= self.epsilon_per_period)
            && spent_d
                .checked_add(cost_d)
                .is_some_and(|d| d <= self.delta_per_period);
        if !fits {
            return Err(BudgetError::Exhausted {
                peer: peer.clone(),
                period: period.to_owned(),
                requested_epsilon: privacy.epsilon,
                requested_delta: privacy.delta,
                remaining_epsilon: self.epsilon_per_period.saturating_sub(spent_e) as f64
                    / EPSILON_UNIT,
                remaining_delta: self.delta_per_period.saturating_sub(spent_d) as f64 / DELTA_UNIT,
            });
        }
        match self
            .accounts
            .iter_mut()
            .find(|a| &a.peer == peer && a.period == period)
        {
            Some(a) => {
                a.epsilon += cost_e;
                a.delta += cost_d;
                a.releases += 1;
            }
            None => self.accounts.push(Account {
                peer: peer.clone(),
                period: period.to_owned(),
                epsilon: cost_e,
                delta: cost_d,
                releases: 1,
            }),
        }
        Ok(Spend { privacy: *privacy })
    }

    /// ε and δ (in accounting units) spent by `peer` in `period`.
    fn spent(&self, peer: &NodeId, period: &str) -> (u64, u64) {
        self.accounts
            .iter()
            .find(|a| &a.peer == peer && a.period == period)
            .map_or((0, 0), |a| (a.epsilon, a.delta))
    }

    /// ε and δ that `peer` may still spend in `period`.
    pub fn remaining(&self, peer: &NodeId, period: &str) -> (f64, f64) {
        let (e, d) = self.spent(peer, period);
        (
            self.epsilon_per_period.saturating_sub(e) as f64 / EPSILON_UNIT,
            self.delta_per_period.saturating_sub(d) as f64 / DELTA_UNIT,
        )
    }

    /// Every account, in the order first spent.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }
}

/// Serialises accounting units as plain numbers (ε, δ) for people to read.
macro_rules! units {
    ($name:ident, $unit:expr) => {
        mod $name {
            use serde::{de::Error, Deserialize, Deserializer, Serializer};

            pub(super) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_f64(*v as f64 / $unit)
            }

            pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
                let f = f64::deserialize(d)?;
                if !(f.is_finite() && f >= 0.0 && f * $unit < u64::MAX as f64) {
                    return Err(D::Error::custom(format!("{f} is not a privacy loss")));
                }
                Ok((f * $unit).round() as u64)
            }
        }
    };
}
units!(epsilon_units, super::EPSILON_UNIT);
units!(delta_units, super::DELTA_UNIT);
