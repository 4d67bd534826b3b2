-- A revoked token keeps no secret hash (issue 16): the sled store drops a token's hash index
-- entry when it revokes it, so a revoked token cannot be found by its secret any more and its
-- hash is stored nowhere. The row stays (revoked tokens stay listed); its hash becomes NULL.
ALTER TABLE crier_tokens ALTER COLUMN secret_hash DROP NOT NULL;
