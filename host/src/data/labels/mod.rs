//! Label sources: CinC 2017 `REFERENCE.csv`, CinC 2021 `# Dx:` SNOMED CT codes, MIT-BIH beat
//! and rhythm annotations.
