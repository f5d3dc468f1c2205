//! Jobs (filled in by the jobs work).
