//! One sentence per verdict, policy verdict and flag (rules.md §D.3, §D.2,
//! §E.4, §A): what report.html says beside a session. Owns only the
//! wording; it decides nothing.

/// What a §D.3 verdict or §E.4 policy verdict means, in one sentence.
pub fn verdict(v: &str) -> &'static str {
    let base = v.split(':').next().unwrap_or(v);
    match base {
        "SECURITY_DOWNGRADE" => "The retry dropped sec-agree: the security agreement was relaxed.",
        "RETRY_LOOP" => "The caller retried unchanged after an unchanged retry had already failed.",
        "REPEATED_WITHOUT_RELAXATION" => "The retry still required every refused capability.",
        "EXTENSION_REQUIRED_UNSATISFIED" => {
            "The callee demanded an extension (421/494) and the retry did not offer it."
        }
        "PARTIAL_RELAXATION" => "The retry removed some, not all, of the refused capabilities.",
        "RELAXATION_WITHOUT_REFUSAL" => {
            "The retry relaxed IMS requirements although nothing was refused."
        }
        "OVER_RELAXED" => {
            "The retry dropped more than what was refused (or relaxed the SDP too far)."
        }
        "SDP_NOT_RELAXED" => {
            "The headers were relaxed but the SDP still demands mandatory preconditions (strict mode)."
        }
        "RETRY_INVALID_IDENTITY" => {
            "A same-dialog retry did not raise the CSeq or changed its identity."
        }
        "NO_RETRY" => "The capability failure was final: the caller never retried.",
        "INFERRED_RELAXATION" => {
            "The refused capability was inferred, not named, and the retry relaxed something."
        }
        "RETRY_NEW_CALL_ID" => {
            "The retry relaxed correctly but under a new Call-ID or From tag (RFC 3261 asks to keep them)."
        }
        "COMPLIANT_RELAXATION" => {
            "The retry removed exactly what was refused, as RFC 3261 and TS 23.228 expect."
        }
        "EXTENSION_REQUIRED_SATISFIED" => "The retry offered the extension the callee demanded.",
        "NETWORK_INTERWORKED" => "A network element (B2BUA leg) did the relaxation, not the UE.",
        "TRUNCATED" => "The capture ends too soon after the failure to see a retry.",
        "NOT_APPLICABLE" => {
            "No relaxation verdict applies (no capability failure, or none expecting a retry)."
        }
        "POLICY_VIOLATION" => {
            "A relaxation the home policy forbids was attempted and not rejected by the home network."
        }
        "POLICY_OVERBLOCKED" => "A home node rejected a relaxation that the policy allows.",
        "POLICY_UNDETERMINED" => "The policy could not decide: the destination class is unknown.",
        "POLICY_ENFORCED" => {
            "A forbidden relaxation was rejected by the home network, as the policy wants."
        }
        "POLICY_COMPLIANT" => "The relaxation is allowed by the home policy.",
        "POLICY_RESPECTED_BY_UE" => {
            "The policy forbids the relaxation and the UE did not attempt it."
        }
        _ => "See the README (sessions.csv, verdict and policy_verdict).",
    }
}

/// What a session flag means, in one sentence.
pub fn flag(f: &str) -> &'static str {
    let base = f.split('(').next().unwrap_or(f);
    match base {
        "AMBIGUOUS_LINK" => "Several requests could be the retry; the most likely one was linked.",
        "MID_DIALOG" => {
            "The failure happened inside an established dialog (re-INVITE, UPDATE, PRACK)."
        }
        "FORKED_MULTI_ANSWER" => "The request forked and more than one branch answered 2xx.",
        "FORK_MIXED_CAPABILITY" => "One fork branch refused a capability another accepted.",
        "CANCEL_BEFORE_1XX" => {
            "The caller sent CANCEL before any provisional response (RFC 3261 §9.1 forbids it)."
        }
        "CANCEL_RACE_ANSWERED" => "A 2xx crossed the CANCEL: the call was established anyway.",
        "PRACK_MISSING" => "A reliable provisional response was never acknowledged with PRACK.",
        "PRACK_UNMATCHED" => "A PRACK acknowledges no reliable provisional response seen.",
        "CANDIDATE_LATE_RETRY" => {
            "This looks like a retry of a failure more than 32 s earlier: too late to link."
        }
        "INCONSISTENT_EXPERIENCE" => {
            "The same subscriber got different results for the same refusal in different contexts."
        }
        "POLICY_NOT_ENFORCED" => {
            "The forbidden relaxation left the home network or was answered 2xx."
        }
        "PRECONDITION_IGNORED" => {
            "The callee answered without the preconditions the offer demanded."
        }
        "PRECONDITION_STALL" => "The precondition negotiation never completed.",
        "REMOTE_LACKS_UPDATE_PREDICTED" => {
            "The callee does not allow UPDATE, which preconditions need."
        }
        "REMOTE_VIOLATES_100REL" => "The callee ignored a required 100rel.",
        "PROXY_REWRITE" => {
            "A proxy changed Require/Proxy-Require between hops (not a relaxation by the UE)."
        }
        "STEPWISE" => "The caller relaxed one capability per retry.",
        "DESIRED_DROPPED" => "The retry no longer lists the refused tags in Supported (D9).",
        "RETRY_WINDOW_CUT" => {
            "The capture ends less than 32 s after the failure: a later retry cannot be excluded."
        }
        "RETRY_LIMIT_EXCEEDED" => "More capability retries than the policy's max_retries.",
        "PREMATURE_RETRY" => "The retry was sent before the failure was acknowledged.",
        "NEW_CALL_ID" => "The retry used a new Call-ID.",
        "CSEQ_NOT_INCREMENTED" => "The retry did not raise the CSeq (RFC 3261 §8.1.3.5).",
        "CSEQ_GAP" => "The retry's CSeq skipped numbers.",
        "SDP_OVER_RELAXED" => "The retry's SDP relaxed preconditions that were not refused.",
        "SDP_NOT_RELAXED" => {
            "The retry kept a mandatory SDP precondition although precondition was refused."
        }
        "OVER_RELAXED" => "The retry dropped a tag that was not refused (D6).",
        "PARTIAL" => "The retry removed only part of the refused tags (D5).",
        "DESIRED_LISTED" => {
            "The retry lists the refused tags in Supported, as TS 23.228 §5.4.2 asks (D9)."
        }
        "NOT_RELAXED" => "The retry still requires every refused tag (D5).",
        "PRECONDITION_PREREQ_MISSING" => {
            "Require: precondition without 100rel or UPDATE support that preconditions need (lint)."
        }
        "RETRY_LOOP" => "An unchanged retry followed another unchanged retry (D12).",
        "DEPENDENT_DROP" => {
            "The retry dropped a tag that depends on a refused one (e.g. 100rel with precondition)."
        }
        "IMS_PROFILE_DEVIATION" => "The request deviates from the IMS profile of TS 24.229 (lint).",
        "MALFORMED_420" => "A 420 without an Unsupported header: the refused tags are inferred.",
        "REQUIRE_PRECONDITION_IN_MODIFICATION" => {
            "A session modification requires precondition (lint)."
        }
        "SEC_AGREE_UNSUPPORTED" => "The peer does not support sec-agree.",
        _ => "See the README (sessions.csv, flags).",
    }
}
