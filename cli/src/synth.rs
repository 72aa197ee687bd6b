//! Synthetic case records (`enlace generate`, the demo, the benchmarks):
//! deterministic for a seed, realistic in shape, entirely invented.
//!
//! Names come from per-country frequency-ordered lists (double surnames,
//! particles, Portuguese order for Brazil), ages from a victim/suspect
//! distribution, nationalities from regional migration corridors, ICCS codes and
//! exploitation types in a plausible mix, events along routes with coordinates,
//! and suspect **networks** whose members share phones, bank accounts, vehicles
//! and documents across cases. `--overlap-with` plants the same persons, with
//! spelling variants, in two countries' files so that cross-border searches hit.

use enlace_node::model::{
    Case, CaseLink, Consent, Degrees, Event, EventKind, Identifier, IdentifierKind, Person,
    Precision, ProceduralStatus, ProtectionMeasure, Relation, Role, VOCABULARY_VERSION,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

/// A place events can happen at.
struct Place {
    subdivision: &'static str,
    name: &'static str,
    lat: f64,
    lon: f64,
}

const fn pl(subdivision: &'static str, name: &'static str, lat: f64, lon: f64) -> Place {
    Place {
        subdivision,
        name,
        lat,
        lon,
    }
}

/// What the generator knows about a country.
struct Country {
    code: &'static str,
    calling: &'static str,
    /// Digits of a national number.
    digits: usize,
    given_f: &'static [&'static str],
    given_m: &'static [&'static str],
    surnames: &'static [&'static str],
    /// Portuguese order: mother's surname then father's.
    portuguese: bool,
    places: &'static [Place],
    /// Where victims found here come from: (nationality, weight).
    origins: &'static [(&'static str, u32)],
    /// Prefix of case ids (the holding authority).
    authority: &'static str,
}

const F_ES: &[&str] = &[
    "María",
    "Guadalupe",
    "Ana",
    "Rosa",
    "Juana",
    "Lucía",
    "Daniela",
    "Fernanda",
    "Valentina",
    "Camila",
    "Sofía",
    "Karla",
    "Paola",
    "Yesenia",
    "Elena",
    "Carmen",
    "Luz",
    "Marta",
    "Isabel",
    "Andrea",
    "Gabriela",
    "Alejandra",
    "Verónica",
    "Leticia",
    "Brenda",
    "Dulce",
    "Yolanda",
    "Esmeralda",
    "Wendy",
    "Jennifer",
    "Kimberly",
    "Heidy",
    "Dayana",
    "Yuliana",
    "Nayeli",
];
const M_ES: &[&str] = &[
    "José",
    "Juan",
    "Luis",
    "Carlos",
    "Jorge",
    "Miguel",
    "Francisco",
    "Pedro",
    "Jesús",
    "Antonio",
    "Alejandro",
    "Andrés",
    "Javier",
    "Diego",
    "Óscar",
    "Héctor",
    "Mario",
    "Julio",
    "Raúl",
    "Ernesto",
    "Edwin",
    "Byron",
    "Wilmer",
    "Kevin",
    "Brayan",
    "Jhon",
    "Fredy",
    "Elmer",
    "Santiago",
    "Sebastián",
];
const SUR_MEX: &[&str] = &[
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Rodríguez",
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
    "Castillo",
    "Moreno",
    "Romero",
    "Álvarez",
    "Chávez",
    "Rivera",
    "Juárez",
    "Ramos",
    "Domínguez",
    "Méndez",
    "de la Cruz",
    "de León",
    "del Ángel",
    "de los Santos",
];
const SUR_GTM: &[&str] = &[
    "López",
    "García",
    "Pérez",
    "Hernández",
    "Morales",
    "González",
    "Ramírez",
    "Rodríguez",
    "Méndez",
    "Martínez",
    "Cruz",
    "Juárez",
    "Gómez",
    "Vásquez",
    "Castillo",
    "Ramos",
    "Reyes",
    "Chávez",
    "Mejía",
    "Orellana",
    "Ixcoy",
    "Tzul",
    "Xicará",
    "Cux",
    "Tuyuc",
    "Chumil",
    "Ajú",
    "Coc",
    "Caal",
    "Tiul",
    "Choc",
    "de León",
    "de la Cruz",
];
const SUR_COL: &[&str] = &[
    "Rodríguez",
    "Gómez",
    "González",
    "Martínez",
    "García",
    "López",
    "Hernández",
    "Sánchez",
    "Ramírez",
    "Pérez",
    "Díaz",
    "Muñoz",
    "Rojas",
    "Moreno",
    "Jiménez",
    "Vargas",
    "Castro",
    "Gutiérrez",
    "Ortiz",
    "Osorio",
    "Restrepo",
    "Cárdenas",
    "Quiñónez",
    "Mosquera",
    "Palacios",
    "Valencia",
    "Arboleda",
    "de la Hoz",
    "de Ávila",
];
const SUR_HND: &[&str] = &[
    "López",
    "Hernández",
    "Martínez",
    "Rodríguez",
    "García",
    "Mejía",
    "Flores",
    "Reyes",
    "Cruz",
    "Sánchez",
    "Romero",
    "Gómez",
    "Castro",
    "Rivera",
    "Zelaya",
    "Banegas",
    "Maradiaga",
    "Andino",
    "Ávila",
    "Oseguera",
    "Midence",
    "Fúnez",
    "Velásquez",
    "de Jesús",
];
const SUR_SLV: &[&str] = &[
    "Hernández",
    "López",
    "Martínez",
    "Rodríguez",
    "García",
    "Flores",
    "Rivas",
    "Ramírez",
    "Mejía",
    "Portillo",
    "Alvarado",
    "Cruz",
    "Reyes",
    "Guevara",
    "Argueta",
    "Aguilar",
    "Chicas",
    "Hernández",
    "Amaya",
    "Escobar",
    "Quintanilla",
    "de Paz",
];
const SUR_VEN: &[&str] = &[
    "González",
    "Rodríguez",
    "Pérez",
    "Hernández",
    "García",
    "Martínez",
    "López",
    "Díaz",
    "Ramírez",
    "Sánchez",
    "Rojas",
    "Romero",
    "Torres",
    "Suárez",
    "Gutiérrez",
    "Mendoza",
    "Contreras",
    "Briceño",
    "Chacón",
    "Colmenares",
    "Parra",
    "de Freitas",
];
const F_BR: &[&str] = &[
    "Maria",
    "Ana",
    "Francisca",
    "Antônia",
    "Adriana",
    "Juliana",
    "Márcia",
    "Fernanda",
    "Patrícia",
    "Aline",
    "Sandra",
    "Camila",
    "Amanda",
    "Bruna",
    "Jéssica",
    "Letícia",
    "Larissa",
    "Beatriz",
    "Gabriela",
    "Vitória",
];
const M_BR: &[&str] = &[
    "José",
    "João",
    "Antônio",
    "Francisco",
    "Carlos",
    "Paulo",
    "Pedro",
    "Lucas",
    "Luiz",
    "Marcos",
    "Luís",
    "Gabriel",
    "Rafael",
    "Daniel",
    "Marcelo",
    "Bruno",
    "Eduardo",
    "Felipe",
    "Raimundo",
    "Rodrigo",
];
const SUR_BRA: &[&str] = &[
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
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "de Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "da Conceição",
    "do Nascimento",
];
const F_EN: &[&str] = &[
    "Mary",
    "Jennifer",
    "Jessica",
    "Ashley",
    "Sarah",
    "Emily",
    "Maria",
    "Amanda",
    "Elizabeth",
    "Stephanie",
];
const M_EN: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "David",
    "William",
    "Jose",
    "Christopher",
    "Daniel",
    "Anthony",
];
const SUR_USA: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
];

const COUNTRIES: &[Country] = &[
    Country {
        code: "MEX",
        calling: "52",
        digits: 10,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_MEX,
        portuguese: false,
        places: &[
            pl("MX-CHP", "Tapachula", 14.9057, -92.2631),
            pl("MX-CMX", "Ciudad de México", 19.4326, -99.1332),
            pl("MX-BCN", "Tijuana", 32.5149, -117.0382),
            pl("MX-ROO", "Cancún", 21.1619, -86.8515),
            pl("MX-NLE", "Monterrey", 25.6866, -100.3161),
            pl("MX-VER", "Veracruz", 19.1738, -96.1342),
            pl("MX-OAX", "Oaxaca de Juárez", 17.0732, -96.7266),
            pl("MX-CHH", "Ciudad Juárez", 31.6904, -106.4245),
            pl("MX-JAL", "Guadalajara", 20.6597, -103.3496),
            pl("MX-PUE", "Puebla", 19.0414, -98.2063),
        ],
        origins: &[
            ("MEX", 55),
            ("GTM", 15),
            ("HND", 12),
            ("SLV", 7),
            ("VEN", 5),
            ("COL", 3),
            ("NIC", 2),
            ("CUB", 1),
        ],
        authority: "FGR",
    },
    Country {
        code: "GTM",
        calling: "502",
        digits: 8,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_GTM,
        portuguese: false,
        places: &[
            pl("GT-GU", "Ciudad de Guatemala", 14.6349, -90.5069),
            pl("GT-QZ", "Quetzaltenango", 14.8347, -91.5181),
            pl("GT-SM", "Tecún Umán", 14.6735, -92.1426),
            pl("GT-PE", "Flores", 16.9258, -89.8926),
            pl("GT-IZ", "Puerto Barrios", 15.7278, -88.5944),
            pl("GT-HU", "Huehuetenango", 15.3197, -91.4709),
            pl("GT-ES", "Escuintla", 14.3009, -90.7858),
        ],
        origins: &[("GTM", 80), ("HND", 8), ("SLV", 7), ("NIC", 3), ("MEX", 2)],
        authority: "MP",
    },
    Country {
        code: "COL",
        calling: "57",
        digits: 10,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_COL,
        portuguese: false,
        places: &[
            pl("CO-DC", "Bogotá", 4.711, -74.0721),
            pl("CO-ANT", "Medellín", 6.2442, -75.5812),
            pl("CO-VAC", "Cali", 3.4516, -76.532),
            pl("CO-BOL", "Cartagena", 10.391, -75.4794),
            pl("CO-NSA", "Cúcuta", 7.8939, -72.5078),
            pl("CO-RIS", "Pereira", 4.8133, -75.6961),
            pl("CO-NAR", "Ipiales", 0.8248, -77.6442),
        ],
        origins: &[("COL", 68), ("VEN", 26), ("ECU", 3), ("PER", 2), ("HTI", 1)],
        authority: "FGN",
    },
    Country {
        code: "HND",
        calling: "504",
        digits: 8,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_HND,
        portuguese: false,
        places: &[
            pl("HN-FM", "Tegucigalpa", 14.0723, -87.1921),
            pl("HN-CR", "San Pedro Sula", 15.5042, -88.025),
            pl("HN-AT", "La Ceiba", 15.7597, -86.7822),
            pl("HN-CH", "Choluteca", 13.3007, -87.1908),
        ],
        origins: &[("HND", 88), ("NIC", 6), ("GTM", 3), ("SLV", 3)],
        authority: "MP",
    },
    Country {
        code: "SLV",
        calling: "503",
        digits: 8,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_SLV,
        portuguese: false,
        places: &[
            pl("SV-SS", "San Salvador", 13.6929, -89.2182),
            pl("SV-SM", "San Miguel", 13.4833, -88.1833),
            pl("SV-SA", "Santa Ana", 13.9942, -89.5597),
            pl("SV-UN", "La Unión", 13.3369, -87.8439),
        ],
        origins: &[("SLV", 85), ("HND", 8), ("NIC", 4), ("GTM", 3)],
        authority: "FGR",
    },
    Country {
        code: "BRA",
        calling: "55",
        digits: 11,
        given_f: F_BR,
        given_m: M_BR,
        surnames: SUR_BRA,
        portuguese: true,
        places: &[
            pl("BR-SP", "São Paulo", -23.5505, -46.6333),
            pl("BR-RJ", "Rio de Janeiro", -22.9068, -43.1729),
            pl("BR-AM", "Manaus", -3.119, -60.0217),
            pl("BR-RR", "Pacaraima", 4.4797, -61.1478),
            pl("BR-PR", "Foz do Iguaçu", -25.5469, -54.5882),
            pl("BR-PA", "Belém", -1.4558, -48.4902),
        ],
        origins: &[("BRA", 84), ("VEN", 7), ("BOL", 4), ("PRY", 3), ("HTI", 2)],
        authority: "MPF",
    },
    Country {
        code: "VEN",
        calling: "58",
        digits: 10,
        given_f: F_ES,
        given_m: M_ES,
        surnames: SUR_VEN,
        portuguese: false,
        places: &[
            pl("VE-A", "Caracas", 10.4806, -66.9036),
            pl("VE-V", "Maracaibo", 10.6427, -71.6125),
            pl("VE-S", "San Cristóbal", 7.7669, -72.225),
        ],
        origins: &[("VEN", 95), ("COL", 5)],
        authority: "MP",
    },
    Country {
        code: "USA",
        calling: "1",
        digits: 10,
        given_f: F_EN,
        given_m: M_EN,
        surnames: SUR_USA,
        portuguese: false,
        places: &[
            pl("US-TX", "Houston", 29.7604, -95.3698),
            pl("US-CA", "Los Angeles", 34.0522, -118.2437),
            pl("US-NY", "New York", 40.7128, -74.006),
            pl("US-FL", "Miami", 25.7617, -80.1918),
        ],
        origins: &[
            ("USA", 45),
            ("MEX", 25),
            ("HND", 8),
            ("GTM", 8),
            ("SLV", 5),
            ("VEN", 5),
            ("HTI", 4),
        ],
        authority: "DOJ",
    },
];

/// Origin countries known only as origins (not generated as holders).
const ORIGIN_ONLY: &[(&str, &str, usize, Place)] = &[
    ("NIC", "505", 8, pl("NI-MN", "Managua", 12.1364, -86.2514)),
    ("ECU", "593", 9, pl("EC-G", "Guayaquil", -2.1894, -79.8891)),
    ("PER", "51", 9, pl("PE-LIM", "Lima", -12.0464, -77.0428)),
    ("CUB", "53", 8, pl("CU-03", "La Habana", 23.1136, -82.3666)),
    (
        "HTI",
        "509",
        8,
        pl("HT-OU", "Port-au-Prince", 18.5944, -72.3074),
    ),
    (
        "BOL",
        "591",
        8,
        pl("BO-S", "Santa Cruz de la Sierra", -17.8146, -63.1561),
    ),
    (
        "PRY",
        "595",
        9,
        pl("PY-ASU", "Asunción", -25.2637, -57.5759),
    ),
];

/// Countries `enlace generate --country` accepts.
pub(crate) fn supported() -> Vec<&'static str> {
    COUNTRIES.iter().map(|c| c.code).collect()
}

fn country(code: &str) -> Option<&'static Country> {
    COUNTRIES.iter().find(|c| c.code == code)
}

/// Transit countries on the usual route from `from` to `to`.
fn transit(from: &str, to: &str) -> &'static [&'static str] {
    match (from, to) {
        ("HND" | "SLV", "MEX") => &["GTM"],
        ("NIC", "MEX") => &["HND", "GTM"],
        ("NIC", "GTM") => &["HND"],
        ("VEN" | "COL" | "ECU", "MEX") => &["GTM"],
        ("HND" | "SLV" | "GTM", "USA") => &["MEX"],
        ("NIC", "USA") => &["HND", "GTM", "MEX"],
        ("VEN", "USA") => &["COL", "MEX"],
        ("HTI", "COL") => &["ECU"],
        ("CUB", "MEX") => &["NIC", "HND", "GTM"],
        ("HTI", "USA") => &["MEX"],
        _ => &[],
    }
}

/// A place in country `code`.
fn place_in(rng: &mut StdRng, code: &str) -> (&'static str, &'static str, f64, f64) {
    if let Some(c) = country(code) {
        let p = &c.places[rng.gen_range(0..c.places.len())];
        return (p.subdivision, p.name, p.lat, p.lon);
    }
    match ORIGIN_ONLY.iter().find(|o| o.0 == code) {
        Some((_, _, _, p)) => (p.subdivision, p.name, p.lat, p.lon),
        None => ("", "", 0.0, 0.0),
    }
}

fn calling(code: &str) -> (&'static str, usize) {
    if let Some(c) = country(code) {
        return (c.calling, c.digits);
    }
    ORIGIN_ONLY
        .iter()
        .find(|o| o.0 == code)
        .map_or(("52", 10), |o| (o.1, o.2))
}

/// Zipf-like pick: earlier entries of a frequency-ordered list are likelier.
fn zipf<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    // Weight 1/(rank+2): cumulative sum over a short list.
    let total: f64 = (0..list.len()).map(|r| 1.0 / (r as f64 + 2.0)).sum();
    let mut x = rng.gen_range(0.0..total);
    for (r, item) in list.iter().enumerate() {
        x -= 1.0 / (r as f64 + 2.0);
        if x <= 0.0 {
            return item;
        }
    }
    list[list.len() - 1]
}

fn weighted<'a>(rng: &mut StdRng, list: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = list.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (item, w) in list {
        if x < *w {
            return item;
        }
        x -= w;
    }
    list[0].0
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    rng.gen_range(2..10)
                } else {
                    rng.gen_range(0..10)
                },
            )
        })
        .collect()
}

/// A phone of `code`, written in one of the ways case files write them.
fn phone(rng: &mut StdRng, code: &str) -> String {
    let (cc, n) = calling(code);
    let number = digits(rng, n);
    let (a, b) = number.split_at(n / 2);
    match rng.gen_range(0..4) {
        0 => format!("+{cc}{number}"),
        1 => format!("+{cc} {a} {b}"),
        2 => format!("00{cc} {a}-{b}"),
        _ => format!("+{cc} ({a}) {b}"),
    }
}

fn document(rng: &mut StdRng, nationality: &str) -> Identifier {
    let (kind, value) = match (nationality, rng.gen_range(0..10)) {
        (_, 0..=5) => (
            "passport",
            format!(
                "{}{}",
                char::from(b'A' + rng.gen_range(0..26)),
                digits(rng, 8)
            ),
        ),
        ("GTM", _) => (
            "national_id",
            format!("{} {} {}", digits(rng, 4), digits(rng, 5), digits(rng, 4)),
        ),
        ("COL" | "VEN", _) => ("national_id", digits(rng, 10)),
        ("BRA", _) => {
            let d = digits(rng, 11);
            (
                "tax_id",
                format!("{}.{}.{}-{}", &d[..3], &d[3..6], &d[6..9], &d[9..]),
            )
        }
        ("MEX", _) => ("voter_id", digits(rng, 13)),
        _ => ("national_id", digits(rng, 9)),
    };
    Identifier {
        kind: IdentifierKind::Document,
        value,
        document_type: Some(kind.into()),
        issuing_country: Some(nationality.into()),
    }
}

fn ident(
    kind: IdentifierKind,
    value: String,
    sub: Option<&str>,
    country: Option<&str>,
) -> Identifier {
    Identifier {
        kind,
        value,
        document_type: sub.map(str::to_owned),
        issuing_country: country.map(str::to_owned),
    }
}

/// What a network's members share.
struct Network {
    phones: Vec<String>,
    accounts: Vec<String>,
    plate: String,
    documents: Vec<Identifier>,
    address: String,
}

/// The generator of one country's file.
pub(crate) struct Generator {
    home: &'static Country,
    rng: StdRng,
    networks: Vec<Network>,
    next_case: u64,
    /// Persons planted from the overlap pool, with the cases that will hold them.
    overlap: Vec<Person>,
    year_now: i32,
}

impl Generator {
    /// A generator for `code` (one of [`supported`]), reproducible from `seed`.
    pub(crate) fn new(code: &str, seed: u64) -> anyhow::Result<Generator> {
        let home = country(code).ok_or_else(|| {
            anyhow::anyhow!(
                "no generator data for {code:?}; expected one of {}",
                supported().join(", ")
            )
        })?;
        // Mixed with the country so two countries with one seed differ.
        let mix = code
            .bytes()
            .fold(seed, |h, b| h.rotate_left(8) ^ u64::from(b));
        Ok(Generator {
            home,
            rng: StdRng::seed_from_u64(mix),
            networks: Vec::new(),
            next_case: 0,
            overlap: Vec::new(),
            // Fixed (the last complete year) so that a seed gives the same file every
            // year and no generated date lies in the future.
            year_now: 2025,
        })
    }

    /// Plants persons shared with `other` (same seed on both sides gives the same persons).
    pub(crate) fn overlap_with(
        &mut self,
        other: &str,
        seed: u64,
        persons: usize,
    ) -> anyhow::Result<()> {
        let other_c = country(other).ok_or_else(|| {
            anyhow::anyhow!(
                "no generator data for {other:?}; expected one of {}",
                supported().join(", ")
            )
        })?;
        if other_c.code == self.home.code {
            anyhow::bail!("--overlap-with names the country itself");
        }
        let (a, b) = if self.home.code < other_c.code {
            (self.home, other_c)
        } else {
            (other_c, self.home)
        };
        let mix = format!("{}{}", a.code, b.code)
            .bytes()
            .fold(seed ^ 0x5eed, |h, x| h.rotate_left(8) ^ u64::from(x));
        let mut rng = StdRng::seed_from_u64(mix);
        let first_side = self.home.code == a.code;
        for i in 0..persons {
            // Victims from the first country found in the second, and suspects in both.
            let role = if i % 3 == 2 {
                Role::Suspect
            } else {
                Role::Victim
            };
            let mut p = person_from(&mut rng, a, role, a.code, 2025);
            if !first_side {
                variant(&mut rng, &mut p);
            }
            self.overlap.push(p);
        }
        Ok(())
    }

    fn network(&mut self) -> Option<usize> {
        if self.networks.is_empty() || self.rng.gen_bool(0.08) {
            let code = self.home.code;
            let n = Network {
                phones: (0..self.rng.gen_range(1..4))
                    .map(|_| phone(&mut self.rng, code))
                    .collect(),
                accounts: (0..self.rng.gen_range(1..3))
                    .map(|_| format!("{}{}", digits(&mut self.rng, 8), digits(&mut self.rng, 10)))
                    .collect(),
                plate: format!(
                    "{}{}{}-{}",
                    char::from(b'A' + self.rng.gen_range(0..26)),
                    char::from(b'A' + self.rng.gen_range(0..26)),
                    char::from(b'A' + self.rng.gen_range(0..26)),
                    digits(&mut self.rng, 4)
                ),
                documents: (0..2).map(|_| document(&mut self.rng, code)).collect(),
                address: {
                    let (_, place, _, _) = place_in(&mut self.rng, code);
                    format!(
                        "Calle {} #{}, {place}",
                        self.rng.gen_range(1..40),
                        self.rng.gen_range(1..300)
                    )
                },
            };
            self.networks.push(n);
        }
        if self.rng.gen_bool(0.75) {
            Some(self.rng.gen_range(0..self.networks.len()))
        } else {
            None
        }
    }

    /// The next case.
    pub(crate) fn case(&mut self) -> Case {
        let i = self.next_case;
        self.next_case += 1;
        let rng = &mut self.rng;
        let home = self.home;
        let year = rng.gen_range(2016..=self.year_now);
        let iccs = weighted(
            rng,
            &[
                ("02041", 50),
                ("02042", 28),
                ("0204", 10),
                ("02044", 9),
                ("02043", 1),
                ("020321", 2),
            ],
        );
        let exploitation: &[&str] = match iccs {
            "02041" => &["sexual_exploitation"],
            "02042" | "020321" => &["forced_labour", "domestic_servitude", "forced_begging"],
            "02043" => &["organ_removal"],
            "02044" => &["forced_criminality", "forced_marriage", "illegal_adoption"],
            _ => &["sexual_exploitation", "forced_labour", "unknown"],
        };
        let victims = weighted(rng, &[("1", 60), ("2", 22), ("3", 10), ("4", 5), ("6", 3)])
            .parse::<usize>()
            .unwrap_or(1);
        let suspects = weighted(rng, &[("0", 25), ("1", 45), ("2", 20), ("3", 10)])
            .parse::<usize>()
            .unwrap_or(1);
        let origin = weighted(rng, home.origins);
        let mut persons = Vec::with_capacity(victims + suspects);
        for _ in 0..victims {
            let nationality = if rng.gen_bool(0.85) {
                origin
            } else {
                weighted(rng, home.origins)
            };
            let mut p = person_from(rng, home, Role::Victim, nationality, year);
            p.exploitation_types =
                vec![exploitation[rng.gen_range(0..exploitation.len())].to_owned()];
            if rng.gen_bool(0.1) {
                p.exploitation_types.push("forced_criminality".into());
            }
            if nationality != home.code {
                p.migration_status = Some(
                    weighted(
                        rng,
                        &[
                            ("irregular_migrant", 50),
                            ("regular_migrant", 18),
                            ("asylum_seeker", 14),
                            ("refugee", 5),
                            ("temporary_protection", 10),
                            ("unknown", 3),
                        ],
                    )
                    .to_owned(),
                );
            } else {
                p.migration_status = Some("national".into());
            }
            p.trafficking_status = Some(
                weighted(
                    rng,
                    &[
                        ("presumed", 40),
                        ("identified", 50),
                        ("confirmed_by_court", 10),
                    ],
                )
                .into(),
            );
            p.status_decided_by = Some(
                weighted(
                    rng,
                    &[
                        ("prosecutor", 50),
                        ("police", 25),
                        ("labour_inspectorate", 10),
                        ("ngo", 10),
                        ("court", 5),
                    ],
                )
                .into(),
            );
            for m in [
                "shelter",
                "psychological_support",
                "legal_assistance",
                "medical_care",
                "temporary_residence",
            ] {
                if rng.gen_bool(0.3) {
                    p.protection_measures.push(ProtectionMeasure {
                        measure: m.into(),
                        date: rng
                            .gen_bool(0.6)
                            .then(|| format!("{year}-{:02}", rng.gen_range(1..=12))),
                    });
                }
            }
            p.consent = Consent {
                data_sharing: Some(rng.gen_bool(0.8)),
                international_sharing: Some(rng.gen_bool(0.4)),
                contact: rng.gen_bool(0.5).then(|| rng.gen_bool(0.7)),
                recorded_on: None,
            };
            persons.push(p);
        }
        let network = self.network();
        let rng = &mut self.rng;
        for _ in 0..suspects {
            let nationality = if rng.gen_bool(0.7) { home.code } else { origin };
            let mut p = person_from(rng, home, Role::Suspect, nationality, year);
            p.role_in_process = vec![weighted(
                rng,
                &[
                    ("recruiter", 35),
                    ("exploiter", 30),
                    ("transporter", 15),
                    ("controller", 8),
                    ("financier", 5),
                    ("harbourer", 7),
                ],
            )
            .into()];
            if let Some(n) = network.map(|k| &self.networks[k]) {
                if rng.gen_bool(0.7) {
                    p.identifiers.push(ident(
                        IdentifierKind::Phone,
                        n.phones[rng.gen_range(0..n.phones.len())].clone(),
                        None,
                        None,
                    ));
                }
                if rng.gen_bool(0.3) {
                    p.identifiers.push(ident(
                        IdentifierKind::BankAccount,
                        n.accounts[rng.gen_range(0..n.accounts.len())].clone(),
                        None,
                        Some(home.code),
                    ));
                }
                if rng.gen_bool(0.2) {
                    p.identifiers.push(ident(
                        IdentifierKind::VehiclePlate,
                        n.plate.clone(),
                        None,
                        Some(home.code),
                    ));
                }
                if rng.gen_bool(0.1) {
                    p.identifiers
                        .push(n.documents[rng.gen_range(0..n.documents.len())].clone());
                }
                if rng.gen_bool(0.2) {
                    p.identifiers.push(ident(
                        IdentifierKind::Address,
                        n.address.clone(),
                        None,
                        Some(home.code),
                    ));
                }
            }
            persons.push(p);
        }
        // Victims recruited through a network keep the recruiter's number.
        if let Some(n) = network.map(|k| &self.networks[k]) {
            if let Some(v) = persons.first_mut() {
                if rng.gen_bool(0.3) {
                    v.identifiers.push(ident(
                        IdentifierKind::Phone,
                        n.phones[0].clone(),
                        None,
                        None,
                    ));
                }
            }
        }
        if !self.overlap.is_empty() && rng.gen_bool(0.5) {
            if let Some(p) = self.overlap.pop() {
                persons.push(p);
            }
        }
        // Events along the route.
        let mut events = Vec::new();
        let month = rng.gen_range(1..=12);
        let mut add = |rng: &mut StdRng, kind, code: &str, date: Option<String>| {
            let (sub, name, lat, lon) = place_in(rng, code);
            if sub.is_empty() {
                return;
            }
            let precise = rng.gen_bool(0.3);
            let jitter = |rng: &mut StdRng| {
                if precise {
                    rng.gen_range(-0.05..0.05)
                } else {
                    0.0
                }
            };
            events.push(Event {
                kind,
                date,
                country: Some(code.to_owned()),
                subdivision: Some(sub.to_owned()),
                place: Some(name.to_owned()),
                latitude: Some(Degrees(round4(lat + jitter(rng)))),
                longitude: Some(Degrees(round4(lon + jitter(rng)))),
                precision: Some(if precise {
                    Precision::Place
                } else {
                    Precision::Municipality
                }),
            });
        };
        let ry = if month > 1 { year } else { year - 1 };
        add(
            rng,
            EventKind::Recruitment,
            origin,
            Some(format!(
                "{ry}-{:02}",
                if month > 1 { month - 1 } else { 12 }
            )),
        );
        for t in transit(origin, home.code).iter().take(2) {
            add(
                rng,
                EventKind::Transit,
                t,
                Some(format!("{year}-{month:02}")),
            );
        }
        add(
            rng,
            EventKind::Exploitation,
            home.code,
            Some(format!("{year}")),
        );
        let jurisdiction = events
            .iter()
            .rev()
            .find(|e| e.country.as_deref() == Some(home.code))
            .and_then(|e| e.subdivision.clone());
        let status = weighted(
            rng,
            &[
                ("complaint", 20),
                ("investigation", 40),
                ("prosecution", 20),
                ("conviction", 10),
                ("acquittal", 3),
                ("closed", 7),
            ],
        );
        let mut case = Case {
            id: format!("{}-{}-{year}-{:06}", home.code, home.authority, i + 1),
            iccs_code: iccs.into(),
            other_iccs_codes: if origin != home.code && rng.gen_bool(0.15) {
                vec!["08051".into()]
            } else {
                Vec::new()
            },
            year: year as u32,
            jurisdiction,
            procedural_status: ProceduralStatus::parse(status),
            complaint_date: Some(format!("{year}-{month:02}-{:02}", rng.gen_range(1..=28))),
            prosecution_date: None,
            judgment_date: None,
            closed_date: None,
            events,
            related_cases: Vec::new(),
            vocabulary: VOCABULARY_VERSION.into(),
            persons,
        };
        if matches!(status, "prosecution" | "conviction" | "acquittal") {
            case.prosecution_date = Some(format!("{year}-12"));
        }
        // Identifiers in kind order, as the CSV layout writes them (exact round trips).
        for p in &mut case.persons {
            p.identifiers
                .sort_by_key(|id| IdentifierKind::ALL.iter().position(|k| *k == id.kind));
        }
        if i > 0 && network.is_some() && rng.gen_bool(0.1) {
            case.related_cases.push(CaseLink {
                case_id: format!(
                    "{}-{}-{year}-{:06}",
                    home.code,
                    home.authority,
                    rng.gen_range(1..=i)
                ),
                node: None,
                relation: Relation::SameNetwork,
            });
        }
        case
    }

    /// Cases until `persons` persons are written (the last case may be cut short).
    pub(crate) fn cases_with_persons(
        &mut self,
        persons: usize,
        mut each: impl FnMut(Case) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut written = 0;
        let mut cases = 0;
        while written < persons {
            let mut c = self.case();
            c.persons.truncate(persons - written);
            written += c.persons.len();
            cases += 1;
            each(c)?;
        }
        // Planted persons not placed yet go into one last case.
        if !self.overlap.is_empty() && persons > 0 {
            let mut c = self.case();
            c.persons = std::mem::take(&mut self.overlap);
            cases += 1;
            each(c)?;
        }
        Ok(cases)
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A person of `nationality` recorded in `home`'s file.
fn person_from(
    rng: &mut StdRng,
    home: &Country,
    role: Role,
    nationality: &str,
    year: i32,
) -> Person {
    let names = country(nationality).unwrap_or(home);
    let female = match role {
        Role::Victim => rng.gen_bool(0.7),
        _ => rng.gen_bool(0.22),
    };
    let list = if female { names.given_f } else { names.given_m };
    let mut given = vec![zipf(rng, list).to_owned()];
    if rng.gen_bool(0.45) {
        let second = zipf(rng, list);
        if second != given[0] {
            given.push(second.to_owned());
        }
    }
    let mut surnames = vec![zipf(rng, names.surnames).to_owned()];
    if rng.gen_bool(0.85) {
        surnames.push(zipf(rng, names.surnames).to_owned());
    }
    if names.portuguese {
        surnames.reverse();
    }
    // Compound given names written as one ("María José") half the time.
    if given.len() == 2 && rng.gen_bool(0.5) {
        given = vec![given.join(" ")];
    }
    let age: i32 = match role {
        Role::Victim => match rng.gen_range(0..100) {
            0..=29 => rng.gen_range(12..18),
            30..=69 => rng.gen_range(18..26),
            70..=94 => rng.gen_range(26..41),
            _ => rng.gen_range(41..60),
        },
        _ => rng.gen_range(19..62),
    };
    let born = year - age;
    let dob = match rng.gen_range(0..10) {
        0 => format!("{born}"),
        1 | 2 => format!("{born}-{:02}", rng.gen_range(1..=12)),
        _ => format!(
            "{born}-{:02}-{:02}",
            rng.gen_range(1..=12),
            rng.gen_range(1..=28)
        ),
    };
    let mut p = Person::new(role);
    p.given_names = given;
    p.surnames = surnames;
    p.sex_gender = Some(
        if rng.gen_bool(0.02) {
            "transgender_non_conforming"
        } else if female {
            "female"
        } else {
            "male"
        }
        .into(),
    );
    p.date_of_birth = Some(dob);
    if role == Role::Victim {
        p.age_at_trafficking = u8::try_from(age).ok();
    }
    p.nationalities = vec![nationality.to_owned()];
    if rng.gen_bool(0.05) && nationality != home.code {
        p.nationalities.push(home.code.to_owned());
    }
    let ethnic: &[(&str, u32)] = match nationality {
        "GTM" => &[
            ("GTM:maya", 40),
            ("GTM:ladino", 55),
            ("GTM:garifuna", 2),
            ("GTM:xinka", 3),
        ],
        "MEX" => &[
            ("MEX:indigena", 20),
            ("MEX:afromexicana", 2),
            ("MEX:ninguna", 78),
        ],
        "COL" => &[
            ("COL:ninguno", 85),
            ("COL:negro_afrocolombiano", 9),
            ("COL:indigena", 5),
            ("COL:raizal", 1),
        ],
        "BRA" => &[
            ("BRA:parda", 45),
            ("BRA:branca", 43),
            ("BRA:preta", 10),
            ("BRA:indigena", 1),
            ("BRA:amarela", 1),
        ],
        _ => &[],
    };
    if !ethnic.is_empty() && rng.gen_bool(0.6) {
        p.ethnicity = Some(weighted(rng, ethnic).to_owned());
    }
    if rng.gen_bool(if role == Role::Victim { 0.55 } else { 0.4 }) {
        p.identifiers.push(document(rng, nationality));
    }
    if rng.gen_bool(if role == Role::Victim { 0.6 } else { 0.5 }) {
        p.identifiers.push(ident(
            IdentifierKind::Phone,
            phone(rng, nationality),
            None,
            None,
        ));
    }
    if rng.gen_bool(0.25) {
        let platform = weighted(
            rng,
            &[
                ("facebook", 45),
                ("whatsapp", 20),
                ("instagram", 20),
                ("tiktok", 15),
            ],
        );
        let handle = format!(
            "{}.{}{}",
            enlace_node::model::fold_name(&p.given_names[0]).replace(' ', "."),
            enlace_node::model::fold_name(&p.surnames[0]).replace(' ', ""),
            rng.gen_range(1..999)
        );
        p.identifiers.push(ident(
            IdentifierKind::SocialMedia,
            handle,
            Some(platform),
            None,
        ));
    }
    if role == Role::Suspect && rng.gen_bool(0.3) {
        p.identifiers.push(ident(
            IdentifierKind::Email,
            format!(
                "{}{}@example.net",
                enlace_node::model::fold_name(&p.surnames[0]).replace(' ', ""),
                rng.gen_range(10..9999)
            ),
            None,
            None,
        ));
    }
    if role == Role::Suspect && rng.gen_bool(0.08) {
        p.aliases = vec![weighted(
            rng,
            &[
                ("El Flaco", 3),
                ("La Güera", 2),
                ("El Chino", 3),
                ("Don Beto", 2),
                ("La Tía", 2),
            ],
        )
        .into()];
    }
    p
}

/// Rewrites a person the way another country's file records them: accents
/// dropped or upper case, particles capitalised, phones and documents formatted
/// differently. Exact-match keys stay equal (folded names, normalised identifiers).
fn variant(rng: &mut StdRng, p: &mut Person) {
    let strip = |s: &str| -> String {
        use unicode_normalization::UnicodeNormalization as _;
        s.nfkd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect()
    };
    match rng.gen_range(0..3) {
        0 => {
            p.given_names = p
                .given_names
                .iter()
                .map(|g| strip(g).to_uppercase())
                .collect();
            p.surnames = p.surnames.iter().map(|s| strip(s).to_uppercase()).collect();
        }
        1 => {
            p.given_names = vec![p.given_names.join(" ")];
            p.surnames = p.surnames.iter().map(|s| strip(s)).collect();
        }
        _ => {
            p.surnames = p
                .surnames
                .iter()
                .map(|s| s.split(' ').map(capitalise).collect::<Vec<_>>().join(" "))
                .collect();
        }
    }
    for id in &mut p.identifiers {
        match id.kind {
            IdentifierKind::Phone => {
                let digits: String = id.value.chars().filter(char::is_ascii_digit).collect();
                let digits = digits.trim_start_matches("00").to_owned();
                id.value = format!("00{digits}");
            }
            IdentifierKind::Document => {
                let v: String = id.value.chars().filter(|c| c.is_alphanumeric()).collect();
                let cut = v.len() / 2;
                id.value = format!("{}-{}", v[..cut].to_lowercase(), &v[cut..]);
            }
            _ => {}
        }
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `n` cases held by `code`, reproducible from `seed` (the demo's data).
pub(crate) fn cases(code: &str, n: usize, seed: u64) -> Vec<Value> {
    let Ok(mut g) = Generator::new(code, seed) else {
        return Vec::new();
    };
    (0..n)
        .map(|_| serde_json::to_value(g.case()).unwrap_or(Value::Null))
        .collect()
}

/// What the demo plants across borders and then searches for.
pub(crate) struct Planted;

impl Planted {
    /// A Guatemalan passport held by a victim known in GTM and in MEX.
    pub(crate) const PASSPORT: (&'static str, &'static str) = ("GTM", "A 4471 0923");
    /// A phone used by a suspect known in MEX and in COL.
    pub(crate) const PHONE: &'static str = "+57 310 555 0142";
    /// A victim recorded with accents in GTM and without in MEX.
    pub(crate) const NAME: (&'static str, &'static str, &'static str) =
        ("María José", "Núñez de la Cruz", "1998-04-17");
}

/// The planted cases of each country.
pub(crate) fn planted(code: &str) -> Vec<Value> {
    match code {
        "GTM" => vec![json!({
            "id": "GTM-MP-2025-00871", "iccs_code": "02041", "year": 2025, "jurisdiction": "GT-QZ",
            "persons": [{
                "role": "victim", "given_names": ["María", "José"], "surnames": ["Núñez", "de la Cruz"],
                "date_of_birth": Planted::NAME.2, "nationalities": ["GTM"],
                "identifiers": [{"kind": "document", "value": "A44710923", "document_type": "passport", "issuing_country": "GTM"}]
            }]
        })],
        "MEX" => vec![
            json!({
                "id": "MEX-FGR-2026-00312", "iccs_code": "02041", "year": 2026, "jurisdiction": "MX-CHP",
                "persons": [{
                    "role": "victim", "given_names": ["MARIA JOSE"], "surnames": ["NUNEZ", "DE LA CRUZ"],
                    "date_of_birth": Planted::NAME.2, "nationalities": ["GTM"],
                    "identifiers": [{"kind": "document", "value": "a-4471-0923", "document_type": "passport", "issuing_country": "GTM"}]
                }]
            }),
            json!({
                "id": "MEX-FGR-2024-01977", "iccs_code": "02042", "year": 2024, "jurisdiction": "MX-BCN",
                "persons": [{
                    "role": "suspect", "given_names": ["Héctor"], "surnames": ["Quiñónez", "Rojas"],
                    "date_of_birth": "1981-07-09", "nationalities": ["COL"],
                    "identifiers": [{"kind": "phone", "value": "0057-310-555-0142"}]
                }]
            }),
        ],
        "COL" => vec![json!({
            "id": "COL-FGN-2025-04410", "iccs_code": "02042", "year": 2025, "jurisdiction": "CO-VAC",
            "persons": [{
                "role": "suspect", "given_names": ["Hector"], "surnames": ["Quinonez"],
                "date_of_birth": "1981-07-09", "nationalities": ["COL"],
                "identifiers": [{"kind": "phone", "value": Planted::PHONE}]
            }]
        })],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_and_planted_cases_are_valid_and_reproducible() {
        for code in ["MEX", "GTM", "COL"] {
            let a = cases(code, 50, 7);
            assert_eq!(a, cases(code, 50, 7));
            for c in a.iter().chain(planted(code).iter()) {
                enlace_node::model::Case::parse(&c.to_string()).unwrap();
            }
        }
    }

    #[test]
    fn every_country_generates_valid_cases() {
        for code in supported() {
            let mut g = Generator::new(code, 42).unwrap();
            g.overlap_with(if code == "MEX" { "GTM" } else { "MEX" }, 42, 10)
                .unwrap();
            let mut n = 0;
            g.cases_with_persons(600, |c| {
                let errors = c.validate_all();
                assert!(
                    errors.is_empty(),
                    "{code}: {errors:?}\n{}",
                    serde_json::to_string(&c).unwrap()
                );
                n += c.persons.len();
                Ok(())
            })
            .unwrap();
            assert!(n >= 600, "{code}: {n}");
        }
    }

    #[test]
    fn seeds_determine_the_output() {
        let run = |seed| {
            let mut g = Generator::new("GTM", seed).unwrap();
            let mut out = Vec::new();
            g.cases_with_persons(300, |c| {
                out.push(serde_json::to_string(&c)?);
                Ok(())
            })
            .unwrap();
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn networks_share_identifiers_and_overlaps_match_across_countries() {
        use std::collections::HashMap;
        let keys = |code: &str, other: &str| {
            let mut g = Generator::new(code, 9).unwrap();
            g.overlap_with(other, 9, 30).unwrap();
            let mut keys: HashMap<Vec<u8>, usize> = HashMap::new();
            g.cases_with_persons(2000, |c| {
                let (ids, names) = c.index_keys();
                for (_, k) in ids.into_iter().chain(names) {
                    *keys.entry(k).or_default() += 1;
                }
                Ok(())
            })
            .unwrap();
            keys
        };
        let mex = keys("MEX", "GTM");
        let gtm = keys("GTM", "MEX");
        // Networks: some identifier is held by several persons.
        assert!(mex.values().any(|&n| n >= 3));
        // Overlap: keys found in both countries' files.
        let shared = mex.keys().filter(|k| gtm.contains_key(*k)).count();
        assert!(shared >= 10, "{shared}");
    }
}
