//! Salesforce and HubSpot emulators. A placeholder until the emulators issue lands; the crate
//! exists now so the workspace layout (and everything that will depend on it) is in place.
