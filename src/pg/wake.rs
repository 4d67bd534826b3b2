//! Wake-ups (to come).
