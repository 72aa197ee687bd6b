//! String similarity on folded name words: Jaro, Jaro–Winkler (Winkler 1990)
//! and the optimal-string-alignment (restricted Damerau–Levenshtein)
//! distance. Written here rather than taken from a crate: they are short, and
//! working on bytes for ASCII words keeps scoring allocation-light.

/// Runs `f` on both strings as byte slices when both are ASCII, else as
/// `char` slices.
fn on_units<R>(a: &str, b: &str, f: impl Fn(&[u32], &[u32]) -> R) -> R {
    let mut ab = [0u32; 32];
    let mut bb = [0u32; 32];
    if a.len() <= 32 && b.len() <= 32 && a.is_ascii() && b.is_ascii() {
        for (d, s) in ab.iter_mut().zip(a.bytes()) {
            *d = u32::from(s);
        }
        for (d, s) in bb.iter_mut().zip(b.bytes()) {
            *d = u32::from(s);
        }
        return f(&ab[..a.len()], &bb[..b.len()]);
    }
    let a: Vec<u32> = a.chars().map(u32::from).collect();
    let b: Vec<u32> = b.chars().map(u32::from).collect();
    f(&a, &b)
}

/// Jaro similarity in `[0, 1]`; 1 for equal strings (and for two empty ones).
pub fn jaro(a: &str, b: &str) -> f64 {
    on_units(a, b, jaro_units)
}

fn jaro_units(a: &[u32], b: &[u32]) -> f64 {
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = vec![false; b.len()];
    let mut a_match: Vec<u32> = Vec::with_capacity(a.len());
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == ca {
                b_used[j] = true;
                a_match.push(ca);
                break;
            }
        }
    }
    let m = a_match.len();
    if m == 0 {
        return 0.0;
    }
    let b_match = b.iter().zip(&b_used).filter(|(_, &u)| u).map(|(&c, _)| c);
    let transpositions = a_match
        .iter()
        .zip(b_match)
        .filter(|(x, y)| **x != *y)
        .count()
        / 2;
    let m = m as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64) / m) / 3.0
}

/// Jaro–Winkler similarity in `[0, 1]`: Jaro boosted by up to four common
/// leading characters (prefix scale 0.1), as in Winkler (1990).
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    on_units(a, b, |a, b| {
        let j = jaro_units(a, b);
        let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
        j + prefix as f64 * 0.1 * (1.0 - j)
    })
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and transpositions of adjacent characters, each costing 1.
pub fn osa_distance(a: &str, b: &str) -> usize {
    on_units(a, b, |a, b| {
        let (n, m) = (a.len(), b.len());
        if n == 0 || m == 0 {
            return n.max(m);
        }
        let w = m + 1;
        let mut d = vec![0usize; (n + 1) * w];
        for i in 0..=n {
            d[i * w] = i;
        }
        for (j, cell) in d.iter_mut().enumerate().take(m + 1) {
            *cell = j;
        }
        for i in 1..=n {
            for j in 1..=m {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                d[i * w + j] = v;
            }
        }
        d[n * w + m]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn known_values() {
        // Winkler's and the usual textbook examples.
        assert!(close(jaro("martha", "marhta"), 0.944));
        assert!(close(jaro_winkler("martha", "marhta"), 0.961));
        assert!(close(jaro("dwayne", "duane"), 0.822));
        assert!(close(jaro_winkler("dwayne", "duane"), 0.84));
        assert!(close(jaro_winkler("dixon", "dicksonx"), 0.813));
        assert!(close(jaro("", ""), 1.0));
        assert!(close(jaro("abc", ""), 0.0));
        assert!(close(jaro_winkler("núñez", "núñez"), 1.0));
        assert_eq!(osa_distance("gonzalez", "gonzales"), 1);
        assert_eq!(osa_distance("garcia", "gracia"), 1);
        assert_eq!(osa_distance("ca", "abc"), 3);
        assert_eq!(osa_distance("", "abc"), 3);
        assert_eq!(osa_distance("peña", "pena"), 1);
    }

    proptest! {
        #[test]
        fn bounded_symmetric_and_reflexive(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            let j = jaro_winkler(&a, &b);
            prop_assert!((0.0..=1.0 + 1e-9).contains(&j));
            prop_assert!(close(jaro(&a, &b), jaro(&b, &a)));
            prop_assert!(close(jaro_winkler(&a, &a), 1.0));
            prop_assert_eq!(osa_distance(&a, &b), osa_distance(&b, &a));
            prop_assert_eq!(osa_distance(&a, &a), 0);
        }
    }
}
