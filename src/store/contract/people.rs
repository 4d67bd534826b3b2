//! The contract of users, API tokens, browser sessions and TOTP (Users, Tokens, Sessions, SecondFactors, Dump), run on both backends.
