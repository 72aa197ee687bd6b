//! Name normalisation: Unicode NFKD, case and accent folding, punctuation and
//! spacing, particles and initials, with the original kept.
//!
//! Folding is deliberate about the letters that matter in the region: `ñ`
//! folds to `n` (records typed without the tilde are the common case), `ç` to
//! `c` in the folded text but to `ss` in the *sound* form the phonetic key
//! reads (`Gonçalves` sounds like `Gonsalves`), `ã`/`õ` to `a`/`o`, `ß` to
//! `ss`, `æ`/`œ` to `ae`/`oe`, `ø`/`ł`/`đ` to `o`/`l`/`d`. Apostrophes join
//! (`O'Higgins` → `ohiggins`, `D'Ávila` → `davila`); hyphens, dots, commas and
//! other punctuation separate words.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// What a word of a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A name word (`maria`, `nunez`, `cruz`).
    Word,
    /// A particle joining surnames or marking a married name: `de`, `del`,
    /// `de la`, `da`, `das`, `do`, `dos`, `y`, `e`, … Not compared.
    Particle,
    /// A single letter, usually an initialled given name (`J.`).
    Initial,
}

/// One word of a name, folded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Folded text: lowercase, no accents (`nunez`).
    pub text: String,
    /// The form the phonetic key reads: as `text`, but `ç` → `ss`.
    pub sound: String,
    /// Word, particle or initial.
    pub kind: TokenKind,
    /// The particles written just before this word, space-separated
    /// (`"de la"` before `cruz`), empty if none.
    pub particles: String,
    /// Whether the word was written with a trailing dot (`Ma.`, `J.`).
    pub dotted: bool,
}

/// A name normalised for matching, with the original kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalised {
    /// The name as written.
    pub original: String,
    /// Every token's folded text, space-separated (`nunez de la cruz`).
    pub folded: String,
    /// The tokens, in order.
    pub tokens: Vec<Token>,
}

impl Normalised {
    /// The tokens that are names (words and initials), without particles.
    pub fn names(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.kind != TokenKind::Particle)
    }
}

/// Particles that may start a compound or married surname.
const LEADING_PARTICLES: &[&str] = &[
    "de", "del", "da", "das", "do", "dos", "di", "du", "van", "von", "der", "den",
];
/// Articles that are particles only after a leading particle (`de la`).
const ARTICLES: &[&str] = &["la", "las", "los", "le", "lo"];
/// Conjunctions between two surnames (`Ortega y Gasset`, `Sousa e Silva`).
const CONJUNCTIONS: &[&str] = &["y", "e", "i"];

/// Appends the folded form of `c` to `text` and its sound form to `sound`;
/// returns false if `c` separates words.
fn fold_char(c: char, text: &mut String, sound: &mut String) -> bool {
    match c {
        'ç' | 'Ç' => {
            text.push('c');
            sound.push_str("ss");
            return true;
        }
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{02BC}' | '\u{00B4}' => return true,
        _ => {}
    }
    let mut any = false;
    for d in std::iter::once(c).nfkd() {
        if is_combining_mark(d) {
            any = true;
            continue;
        }
        for l in d.to_lowercase() {
            if is_combining_mark(l) {
                continue;
            }
            // Letters NFKD leaves whole (after it, so that compatibility
            // forms such as a modifier æ fold the same way).
            let special = match l {
                'ß' => "ss",
                'æ' => "ae",
                'œ' => "oe",
                'ø' => "o",
                'đ' | 'ð' => "d",
                'ł' => "l",
                'ı' => "i",
                'þ' => "th",
                _ => "",
            };
            if !special.is_empty() {
                text.push_str(special);
                sound.push_str(special);
            } else if l.is_alphanumeric() {
                text.push(l);
                sound.push(l);
            } else {
                return false;
            }
            any = true;
        }
    }
    any
}

/// Folds a string to lowercase words without accents, single-spaced
/// (`"  NÚÑEZ-de la Cruz "` → `"nunez de la cruz"`).
pub fn fold(s: &str) -> String {
    normalise_name(s).folded
}

/// Normalises one name string (a given-names field, a surnames field or a
/// whole name).
pub fn normalise_name(s: &str) -> Normalised {
    // Split into raw words, remembering trailing dots.
    let mut raw: Vec<(String, String, bool)> = Vec::new();
    let (mut text, mut sound) = (String::new(), String::new());
    for c in s.chars() {
        if !fold_char(c, &mut text, &mut sound) {
            if !text.is_empty() {
                raw.push((
                    std::mem::take(&mut text),
                    std::mem::take(&mut sound),
                    c == '.',
                ));
            }
            text.clear();
            sound.clear();
        }
    }
    if !text.is_empty() {
        raw.push((text, sound, false));
    }

    let n = raw.len();
    let mut tokens: Vec<Token> = Vec::with_capacity(n);
    let mut pending = String::new();
    for (i, (text, sound, dotted)) in raw.into_iter().enumerate() {
        let last = i + 1 == n;
        let prev = tokens.last().map(|t| t.kind);
        let word = text.as_str();
        let particle = !last
            && !dotted
            && (LEADING_PARTICLES.contains(&word)
                || (prev == Some(TokenKind::Particle) && ARTICLES.contains(&word))
                || (matches!(prev, Some(TokenKind::Word)) && CONJUNCTIONS.contains(&word)));
        let kind = if dotted && word.chars().count() == 1 {
            TokenKind::Initial
        } else if particle {
            TokenKind::Particle
        } else if word.chars().count() == 1 {
            TokenKind::Initial
        } else {
            TokenKind::Word
        };
        let particles = if kind == TokenKind::Particle {
            String::new()
        } else {
            std::mem::take(&mut pending)
        };
        if kind == TokenKind::Particle {
            if !pending.is_empty() {
                pending.push(' ');
            }
            pending.push_str(&text);
        }
        tokens.push(Token {
            text,
            sound,
            kind,
            particles,
            dotted,
        });
    }
    let folded = tokens
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Normalised {
        original: s.to_owned(),
        folded,
        tokens,
    }
}

/// Splits one written name into given names and surnames.
///
/// With a comma, what comes before it is the surnames (`"NUNEZ DE LA CRUZ,
/// MARIA J."`). Without one, the last two name words (with their particles)
/// are the surnames and the rest the given names; with two words, one each;
/// with one word, a surname. The scorer tolerates a wrong split (fields are
/// compared order-insensitively and may be swapped), so this only needs to be
/// roughly right.
pub fn split_full_name(name: &str) -> (Vec<String>, Vec<String>) {
    let some = |s: &str| {
        let s = s.trim();
        if s.is_empty() {
            Vec::new()
        } else {
            vec![s.to_owned()]
        }
    };
    if let Some((surnames, given)) = name.split_once(',') {
        return (some(given), some(surnames));
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    let n = normalise_name(name);
    // Map normalised tokens back to whitespace words only when they align 1:1.
    if n.tokens.len() != words.len() {
        let names: Vec<&Token> = n.names().collect();
        return match names.len() {
            0 => (Vec::new(), Vec::new()),
            1 => (Vec::new(), some(name)),
            _ => {
                let cut = names.len().saturating_sub(2).max(1);
                let given: Vec<String> = names[..cut].iter().map(|t| t.text.clone()).collect();
                let rest: Vec<String> = n
                    .tokens
                    .iter()
                    .skip_while(|t| !std::ptr::eq(*t, names[cut]))
                    .map(|t| t.text.clone())
                    .collect();
                (some(&given.join(" ")), some(&rest.join(" ")))
            }
        };
    }
    let name_positions: Vec<usize> = n
        .tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind != TokenKind::Particle)
        .map(|(i, _)| i)
        .collect();
    match name_positions.len() {
        0 => (Vec::new(), Vec::new()),
        1 => (Vec::new(), some(name)),
        k => {
            let cut_name = k.saturating_sub(2).max(1);
            // Surnames start at the first particle before that name word.
            let mut cut = name_positions[cut_name];
            while cut > 0 && n.tokens[cut - 1].kind == TokenKind::Particle {
                cut -= 1;
            }
            (some(&words[..cut].join(" ")), some(&words[cut..].join(" ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(n: &Normalised) -> Vec<(&str, TokenKind)> {
        n.tokens.iter().map(|t| (t.text.as_str(), t.kind)).collect()
    }

    #[test]
    fn folds_accents_case_and_punctuation() {
        let n = normalise_name("  NÚÑEZ-de la Cruz ");
        assert_eq!(n.folded, "nunez de la cruz");
        assert_eq!(n.original, "  NÚÑEZ-de la Cruz ");
        assert_eq!(
            texts(&n),
            vec![
                ("nunez", TokenKind::Word),
                ("de", TokenKind::Particle),
                ("la", TokenKind::Particle),
                ("cruz", TokenKind::Word)
            ]
        );
        assert_eq!(n.tokens[3].particles, "de la");
        assert_eq!(fold("O'Higgins"), "ohiggins");
        assert_eq!(fold("D’Ávila"), "davila");
        assert_eq!(fold("Mª Ángeles"), "ma angeles");
        assert_eq!(fold("STRAßE Æsir Łukasz"), "strasse aesir lukasz");
    }

    #[test]
    fn cedilla_sounds_like_double_s() {
        let n = normalise_name("Gonçalves");
        assert_eq!(n.tokens[0].text, "goncalves");
        assert_eq!(n.tokens[0].sound, "gonssalves");
    }

    #[test]
    fn particles_initials_and_conjunctions() {
        let n = normalise_name("Maria J. Ortega y Gasset");
        assert_eq!(
            texts(&n),
            vec![
                ("maria", TokenKind::Word),
                ("j", TokenKind::Initial),
                ("ortega", TokenKind::Word),
                ("y", TokenKind::Particle),
                ("gasset", TokenKind::Word)
            ]
        );
        // A lone particle-like word is a name.
        assert_eq!(texts(&normalise_name("Do")), vec![("do", TokenKind::Word)]);
        assert_eq!(
            texts(&normalise_name("dos Santos")),
            vec![("dos", TokenKind::Particle), ("santos", TokenKind::Word)]
        );
        assert_eq!(
            normalise_name("E. Silva").tokens[0].kind,
            TokenKind::Initial
        );
    }

    #[test]
    fn splits_full_names() {
        assert_eq!(
            split_full_name("NUNEZ DE LA CRUZ, MARIA J."),
            (
                vec!["MARIA J.".to_owned()],
                vec!["NUNEZ DE LA CRUZ".to_owned()]
            )
        );
        assert_eq!(
            split_full_name("María José Núñez de la Cruz"),
            (
                vec!["María José".to_owned()],
                vec!["Núñez de la Cruz".to_owned()]
            )
        );
        assert_eq!(
            split_full_name("Juan Pérez"),
            (vec!["Juan".to_owned()], vec!["Pérez".to_owned()])
        );
        assert_eq!(split_full_name("Pérez"), (vec![], vec!["Pérez".to_owned()]));
        assert_eq!(split_full_name("  "), (vec![], vec![]));
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(s in "\\PC{0,40}") {
            let once = normalise_name(&s);
            let twice = normalise_name(&once.folded);
            prop_assert_eq!(&twice.folded, &once.folded);
        }

        #[test]
        fn accents_and_case_do_not_matter(s in "[a-zA-Z ]{0,30}") {
            let accented: String = s.chars().map(|c| match c {
                'a' => 'á', 'e' => 'é', 'i' => 'í', 'o' => 'ó', 'u' => 'ü', 'n' => 'ñ',
                'A' => 'Ã', 'E' => 'Ê', 'O' => 'Ô', 'C' => 'Ç', c => c,
            }).collect();
            prop_assert_eq!(fold(&accented), fold(&s.to_lowercase()));
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}", t in ".{0,60}") {
            let _ = normalise_name(&s);
            let _ = normalise_name(&t);
            let _ = split_full_name(&s);
            let _ = split_full_name(&t);
        }
    }
}
