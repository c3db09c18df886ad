"""Cloud Logging for the audit records: the real API clients (`clients`), provisioning
and checking of the locked bucket and its sink (`provision`), and a local emulator of the
API (`emulator`) for the tests and the local stack."""
