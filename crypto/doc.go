// Package crypto seals visitor contacts with age and keeps the keys that
// open them.
//
// A sealed record has two age layers (DESIGN "Encryption"):
//
//	sealed = age(outer: the UTC day's epoch recipient,
//	             age(inner: the health office's recipients, contact JSON))
//
// The inner layer gives confidentiality: only the health office's identity
// opens it. The outer layer gives deletion: one X25519 key pair per day, whose
// private half lives in a [KeyStore] directory and is destroyed by the purge,
// so that every copy of that day's records, backups included, becomes
// unreadable.
//
// Every key file and every ciphertext is in age's own format, so the stock
// age and age-keygen tools interoperate: an identity written by
// [WriteIdentityFile] or [KeyStore.Create] is what age-keygen writes, a
// recipients file read by [ReadRecipients] is what age -R reads, and the
// inner ciphertext that [OpenOuter] returns is what age -d decrypts.
//
// The package also derives checkout tokens and idempotency hashes
// (HMAC-SHA256 and SHA-256, compared in constant time).
//
// Errors a caller must react to are *registry.Error values with the codes
// named in each doc comment. Messages name files and days, never contact
// data, key material or tokens.
package crypto
