//! `enlace generate`: synthetic case files for a member state.

use std::{io::Write, path::PathBuf};

use anyhow::Context as _;

use crate::{
    records::{self, CsvOut, Format},
    synth::Generator,
};

/// Options of `enlace generate`.
#[derive(clap::Args, Clone)]
pub(crate) struct GenerateArgs {
    /// The holding country (MEX, GTM, COL, HND, SLV, BRA, VEN, USA).
    #[arg(long)]
    country: String,
    /// Persons to write (cases hold 1 to 9 persons).
    #[arg(long, default_value_t = 1000)]
    persons: usize,
    /// Seed: the same seed and options give the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Plant persons also planted by `generate --country OTHER --overlap-with THIS` with the same seed.
    #[arg(long)]
    overlap_with: Option<String>,
    /// How many persons to plant with --overlap-with (default: 1 % of --persons, at least 5).
    #[arg(long)]
    overlap: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Output file (default: standard output).
    #[arg(long, short = 'o', default_value = "-")]
    output: PathBuf,
}

/// Writes the file.
pub(crate) fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let mut g = Generator::new(&args.country.to_uppercase(), args.seed)?;
    if let Some(other) = &args.overlap_with {
        let n = args.overlap.unwrap_or((args.persons / 100).max(5));
        g.overlap_with(&other.to_uppercase(), args.seed, n)?;
    }
    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.output)
                .with_context(|| format!("creating {}", args.output.display()))?,
        )
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    match args.format {
        Format::Jsonl => {
            g.cases_with_persons(args.persons, |c| {
                serde_json::to_writer(&mut sink, &c)?;
                sink.write_all(b"\n")?;
                Ok(())
            })?;
        }
        Format::Csv => {
            let mut out = CsvOut::new(&mut sink, records::GENERATED_EVENT_SLOTS)?;
            g.cases_with_persons(args.persons, |c| Ok(out.case(&c)?))?;
            out.finish()?;
        }
    }
    sink.flush()?;
    Ok(())
}
