//! PostgreSQL backend of the port's users, API tokens, browser sessions and TOTP (Users, Tokens, Sessions, SecondFactors, Dump).
