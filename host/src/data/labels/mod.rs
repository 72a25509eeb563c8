//! Label sources: MIT-BIH beat annotations grouped into AAMI classes, MIT-BIH rhythm
//! annotations as intervals, CinC 2017 `REFERENCE.csv` files, and CinC 2021 `# Dx:` SNOMED CT
//! codes merged into the Challenge's 26 scored classes.

pub mod aami;
pub mod cinc2017;
pub mod cinc2021;
pub mod rhythm;
