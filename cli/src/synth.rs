//! Synthetic case records for the demo: deterministic, realistic in shape,
//! entirely invented. A few records are planted in more than one country so
//! that cross-border searches find them.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

const GIVEN_F: &[&str] = &[
    "María",
    "José",
    "Ana",
    "Lucía",
    "Guadalupe",
    "Rosa",
    "Carmen",
    "Daniela",
    "Valentina",
    "Camila",
    "Fernanda",
    "Sofía",
    "Isabel",
    "Juana",
    "Marta",
    "Yesenia",
    "Karla",
    "Paola",
    "Elena",
    "Luz",
];
const GIVEN_M: &[&str] = &[
    "Juan",
    "José",
    "Luis",
    "Carlos",
    "Jorge",
    "Miguel",
    "Pedro",
    "Andrés",
    "Francisco",
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
];
const SURNAMES: &[&str] = &[
    "García",
    "Hernández",
    "López",
    "Martínez",
    "González",
    "Rodríguez",
    "Pérez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vásquez",
    "Reyes",
    "Jiménez",
    "Torres",
    "Díaz",
    "Castillo",
    "Ortiz",
    "Muñoz",
    "Rojas",
    "Chávez",
    "Méndez",
    "Herrera",
    "Aguilar",
    "de León",
    "Quiñónez",
    "Ixcoy",
    "Tzul",
];
const ICCS: &[&str] = &["0204", "02041", "02041", "02041", "02042", "02042", "02044"];

struct Country {
    code: &'static str,
    calling: &'static str,
    regions: &'static [&'static str],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "MEX",
        calling: "52",
        regions: &["MX-CHP", "MX-CMX", "MX-BCN", "MX-VER", "MX-OAX"],
    },
    Country {
        code: "GTM",
        calling: "502",
        regions: &["GT-GU", "GT-QZ", "GT-SM", "GT-PE"],
    },
    Country {
        code: "COL",
        calling: "57",
        regions: &["CO-ANT", "CO-VAC", "CO-DC", "CO-NAR"],
    },
];

fn country(code: &str) -> &'static Country {
    COUNTRIES
        .iter()
        .find(|c| c.code == code)
        .unwrap_or(&COUNTRIES[0])
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn phone(rng: &mut StdRng, c: &Country) -> String {
    let digits = if c.calling.len() == 3 { 8 } else { 10 };
    let n: String = (0..digits)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    rng.gen_range(2..10)
                } else {
                    rng.gen_range(0..10)
                },
            )
        })
        .collect();
    format!("+{} {}", c.calling, n)
}

fn person(rng: &mut StdRng, role: &str, home: &Country) -> Value {
    let female = role == "victim" && rng.gen_bool(0.7) || role != "victim" && rng.gen_bool(0.2);
    let given_list = if female { GIVEN_F } else { GIVEN_M };
    let mut given = vec![pick(rng, given_list)];
    if rng.gen_bool(0.5) {
        given.push(pick(rng, given_list));
    }
    let surnames = vec![pick(rng, SURNAMES), pick(rng, SURNAMES)];
    let nationality = if rng.gen_bool(0.6) {
        home
    } else {
        &COUNTRIES[rng.gen_range(0..COUNTRIES.len())]
    };
    let year = if role == "victim" {
        rng.gen_range(1985..2010)
    } else {
        rng.gen_range(1960..2000)
    };
    let dob = format!(
        "{year}-{:02}-{:02}",
        rng.gen_range(1..13),
        rng.gen_range(1..29)
    );
    let mut ids = Vec::new();
    if rng.gen_bool(0.6) {
        let letter = char::from(b'A' + rng.gen_range(0..26));
        ids.push(json!({"kind": "document", "value": format!("{letter}{:08}", rng.gen_range(0..100_000_000u32)),
                        "document_type": "passport", "issuing_country": nationality.code}));
    }
    if rng.gen_bool(0.7) {
        ids.push(json!({"kind": "phone", "value": phone(rng, home)}));
    }
    if role == "suspect" && rng.gen_bool(0.3) {
        ids.push(json!({"kind": "email", "value": format!("user{}@example.net", rng.gen_range(1000..99999))}));
    }
    json!({
        "role": role,
        "given_names": given,
        "surnames": surnames,
        "date_of_birth": dob,
        "nationalities": [nationality.code],
        "identifiers": ids,
    })
}

/// `n` random cases held by `code`, reproducible from `seed`.
pub(crate) fn cases(code: &str, n: usize, seed: u64) -> Vec<Value> {
    let home = country(code);
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let mut persons = Vec::new();
            for _ in 0..rng.gen_range(1..4) {
                persons.push(person(&mut rng, "victim", home));
            }
            for _ in 0..rng.gen_range(0..3) {
                persons.push(person(&mut rng, "suspect", home));
            }
            json!({
                "id": format!("{code}-{}-{:05}", rng.gen_range(2019..2027), i),
                "iccs_code": pick(&mut rng, ICCS),
                "year": rng.gen_range(2019..2027),
                "jurisdiction": pick(&mut rng, home.regions),
                "persons": persons,
            })
        })
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
}
