//! Container names: Docker's validation rule and Docker-style random names ("brave_turing").
//!
//! Names are stored with a leading '/' as dockerd does (`Names: ["/web"]` in the API);
//! both functions here return that form.

use rand::seq::SliceRandom;
use rand::Rng;
use skiff_api::{ApiError, ErrorKind};
use thiserror::Error;

/// The characters dockerd allows, as its error message quotes them.
const VALID_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NameError {
    /// dockerd's exact wording (clients and tests match on it).
    #[error("Invalid container name ({0}), only {VALID_CHARS} are allowed")]
    Invalid(String),
}

impl NameError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NameError::Invalid(_) => ErrorKind::InvalidArgument,
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

/// Checks `name` against `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` and returns it with a leading '/'.
pub fn validate_name(name: &str) -> Result<String, NameError> {
    if skiff_api::types::container::is_valid_container_name(name) {
        Ok(format!("/{}", name.strip_prefix('/').unwrap_or(name)))
    } else {
        Err(NameError::Invalid(name.to_string()))
    }
}

/// How many plain random names to try before adding a numeric suffix (dockerd tries a few).
const PLAIN_TRIES: usize = 3;
/// Then names with a one-digit suffix, as dockerd's `GetRandomName(retry)` does.
const SUFFIX_TRIES: usize = 10;

/// A free Docker-style name ("/adjective_surname"); `is_taken` gets the '/'-prefixed form.
pub fn generate_name(is_taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::thread_rng();
    for attempt in 0..PLAIN_TRIES + SUFFIX_TRIES {
        let mut name = random_pair(&mut rng);
        if attempt >= PLAIN_TRIES {
            name.push_str(&rng.gen_range(0..10).to_string());
        }
        if !is_taken(&name) {
            return name;
        }
    }
    // Crowded namespace: walk numeric suffixes until one is free (always terminates in practice
    // since the taken set is finite).
    let base = random_pair(&mut rng);
    (1u64..)
        .map(|n| format!("{base}{n}"))
        .find(|n| !is_taken(n))
        .unwrap_or(base)
}

fn random_pair(rng: &mut impl Rng) -> String {
    loop {
        let left = ADJECTIVES.choose(rng).copied().unwrap_or("brave");
        let right = SURNAMES.choose(rng).copied().unwrap_or("turing");
        // dockerd's one exclusion: Steve Wozniak is not boring
        if left == "boring" && right == "wozniak" {
            continue;
        }
        return format!("/{left}_{right}");
    }
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

/// Notable scientists and engineers, as in dockerd's generator.
const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "ardinghelli",
    "babbage",
    "banach",
    "bardeen",
    "bartik",
    "bassi",
    "bell",
    "benz",
    "bhabha",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "brown",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "cori",
    "cray",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "dirac",
    "easley",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goldstine",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hermann",
    "hodgkin",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "jackson",
    "jang",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "kalam",
    "kare",
    "keller",
    "kepler",
    "khorana",
    "kilby",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lehmann",
    "lewin",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclean",
    "meitner",
    "mendel",
    "mestorf",
    "minsky",
    "mirzakhani",
    "morse",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ramanujan",
    "ride",
    "ritchie",
    "roentgen",
    "rosalind",
    "saha",
    "sammet",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "sinoussi",
    "snyder",
    "spence",
    "stonebraker",
    "swanson",
    "swartz",
    "taussig",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "varahamihira",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    #[test]
    fn accepts_docker_names_and_adds_the_slash() {
        assert_eq!(validate_name("web").unwrap(), "/web");
        assert_eq!(validate_name("/web").unwrap(), "/web");
        assert_eq!(validate_name("a1").unwrap(), "/a1");
        assert_eq!(validate_name("My.app_1-x").unwrap(), "/My.app_1-x");
        assert_eq!(validate_name("0-0").unwrap(), "/0-0");
    }

    #[test]
    fn rejects_bad_names_with_dockers_message() {
        for bad in [
            "", "/", "a", "/a", "-web", "_web", ".web", "we b", "we/b", "//web", "wé",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn generated_names_are_valid_and_free() {
        for _ in 0..200 {
            let n = generate_name(|_| false);
            assert_eq!(validate_name(&n).unwrap(), n);
            let (l, r) = n[1..].split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&l) && SURNAMES.contains(&r), "{n}");
            assert_ne!(n, "/boring_wozniak");
        }
    }

    #[test]
    fn taken_names_are_skipped_then_suffixed() {
        // every plain pair is taken: the result must carry a digit suffix and be free
        let taken = RefCell::new(HashSet::new());
        let n = generate_name(|c| {
            let plain = !c.ends_with(|ch: char| ch.is_ascii_digit());
            taken.borrow_mut().insert(c.to_string());
            plain
        });
        assert!(n.ends_with(|ch: char| ch.is_ascii_digit()), "{n}");
        // everything short is taken: falls back to walking suffixes
        let n = generate_name(|c| c.len() < 60 && !c.ends_with("17"));
        assert!(n.ends_with("17"), "{n}");
    }
}
