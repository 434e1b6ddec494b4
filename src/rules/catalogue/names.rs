//! The names of the rule catalogue as types: every verdict, flag, failure
//! category, policy verdict and reason, outcome and UE profile that a report
//! can hold, with its CSV spelling and the text of its reference entry
//! (rules.md clause, what it means for the call, what to check next).
//!
//! It owns the spellings: no other file writes one of these names as a
//! string. It never decides anything: the rules modules do.

use std::fmt;
use std::str::FromStr;

/// The reference text of one name (docs/reference.md, `sipaudit explain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doc {
    /// The rules.md clause that defines it.
    pub clause: &'static str,
    /// What it means for the call, in one plain sentence.
    pub meaning: &'static str,
    /// What to check next.
    pub next: &'static str,
}

/// A spelling that names nothing of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName(pub String);

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a name of the rule catalogue", self.0)
    }
}

impl std::error::Error for UnknownName {}

/// Declares one enum of names: variants in the order given (the severity
/// order where there is one: `Ord` follows it), `ALL`, `as_str`, `doc`,
/// `Display` and `FromStr` with the CSV spelling.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident = $spelling:literal
                    [$clause:literal, $meaning:literal, $next:literal],
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                // The meaning is plain text, shared with the reports and
                // `sipaudit explain` ("[emergency] relaxation",
                // "POLICY_VIOLATION:<REASON>"), not Markdown.
                #[allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
                #[doc = concat!("`", $spelling, "` (rules.md ", $clause, "): ", $meaning)]
                $variant,
            )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The CSV spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)*
                }
            }

            /// The reference entry.
            pub const fn doc(self) -> Doc {
                match self {
                    $($name::$variant => Doc {
                        clause: $clause,
                        meaning: $meaning,
                        next: $next,
                    },)*
                }
            }

            /// Position in [`Self::ALL`] (0 = first declared).
            pub fn rank(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with a CSV spelling (for tests and parsers).
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName(s.to_string()))
            }
        }
    };
}

names! {
    /// The relaxation verdicts of rules.md §D.3, most severe first: `Ord`
    /// is the session order (the session verdict is the minimum).
    pub enum Verdict {
        SecurityDowngrade = "SECURITY_DOWNGRADE" ["§D.3 item 1",
            "The retry dropped sec-agree: the security agreement was relaxed, which is never a 23.228 relaxation.",
            "Find out why the P-CSCF or registrar refused sec-agree, and whether the UE should have registered without it."],
        RetryLoop = "RETRY_LOOP" ["§D.3 item 6, §D.2 D12",
            "The UA sent the same refused request again and again without changing it.",
            "Look at the UA's retry logic: it repeats a request the remote already refused."],
        RepeatedWithoutRelaxation = "REPEATED_WITHOUT_RELAXATION" ["§D.3 item 7",
            "The retry kept every refused capability, so the remote will refuse it again.",
            "Check the UE's 420 handling: it retried without removing the refused tag."],
        ExtensionRequiredUnsatisfied = "EXTENSION_REQUIRED_UNSATISFIED" ["§D.3 reverse case",
            "The remote insisted on an extension (421 or 494) and the retry still did not offer it.",
            "Compare the 421 Require (or the 494) with the retry's Supported and Require headers."],
        PartialRelaxation = "PARTIAL_RELAXATION" ["§D.3 item 8",
            "The retry removed some of the refused capabilities but kept others.",
            "See kept_refused in failures.csv: those tags will be refused again."],
        RelaxationWithoutRefusal = "RELAXATION_WITHOUT_REFUSAL" ["§D.3 item 3",
            "The call failed for another reason, yet the retry dropped an IMS capability or relaxed the SDP.",
            "Check whether the failure really called for dropping preconditions, 100rel or UPDATE."],
        OverRelaxed = "OVER_RELAXED" ["§D.3 item 9, §D.2 D6/D10",
            "The retry dropped more than was refused (see the OVER_RELAXED flag for the tags).",
            "Compare dropped with refused in failures.csv: the extra tags were given up for nothing."],
        SdpNotRelaxed = "SDP_NOT_RELAXED" ["§D.3 item 10, §D.2 D10",
            "Preconditions were refused, the headers were relaxed, but the SDP still demands them as mandatory (strict sdp_mode only).",
            "Look at the retry's a=des lines: the strength should no longer be mandatory."],
        RetryInvalidIdentity = "RETRY_INVALID_IDENTITY" ["§D.3 item 11, §D.2 D2/D3",
            "The retry kept the Call-ID but reused the CSeq or the branch, so the network may take it for the old request.",
            "Check the retry's CSeq and bottom Via branch against the failed request."],
        NoRetry = "NO_RETRY" ["§D.3 item 4",
            "The UA was done with the failure and sent no retry: the call failed.",
            "Decide whether this UE should relax (Rel-6 and later) or is a Rel-5 UE that may not."],
        InferredRelaxation = "INFERRED_RELAXATION" ["§D.3 item 12",
            "The refusal named no usable tag, so what the retry relaxed is taken as what was refused.",
            "Read the failure response (malformed 420 or Warning 306/307) to confirm what the remote refused."],
        RetryNewCallId = "RETRY_NEW_CALL_ID" ["§D.3 item 13",
            "The relaxation was right but the retry started a new call (new Call-ID or From tag) instead of keeping P's.",
            "Usually harmless; retry_link and link_confidence say how sure the link is."],
        CompliantRelaxation = "COMPLIANT_RELAXATION" ["§D.3 item 14",
            "The UA dropped exactly what was refused and retried in the same call: the behaviour RFC 3261 and 23.228 ask for.",
            "Nothing, unless the policy verdict says the home network forbids this relaxation."],
        ExtensionRequiredSatisfied = "EXTENSION_REQUIRED_SATISFIED" ["§D.3 reverse case",
            "The remote insisted on an extension (421 or 494) and the retry offered it.",
            "Nothing; the call went on with the extension."],
        NetworkInterworked = "NETWORK_INTERWORKED" ["§D.3 network relaxation, §A.6",
            "A network element (AS, IBCF, B2BUA) did the relaxation, not the UE.",
            "Check the element's leg against the home policy if relaxation by the network is unexpected."],
        Truncated = "TRUNCATED" ["§D.3 item 5",
            "The capture ends too soon after the failure to say whether a retry followed.",
            "Capture longer (at least window_s past the failure) or add the next rotated file."],
        NotApplicable = "NOT_APPLICABLE" ["§D.3 item 2",
            "No relaxation verdict applies: no capability failure, or no retry is expected after it.",
            "Nothing for relaxation; failure_class and outcome still say what happened."],
    }
}

names! {
    /// The flags of the `flags` cells (rules.md §A–§F), in reference order.
    pub enum Flag {
        NewCallId = "NEW_CALL_ID" ["§D.2 D1",
            "The retry was linked by a rule other than H0 (new Call-ID or new From tag); written NEW_CALL_ID(rule,confidence).",
            "Check retry_link and link_confidence: a low confidence link may be a different call."],
        CseqGap = "CSEQ_GAP" ["§D.2 D2",
            "The retry's CSeq is more than one above the UAC's last (a warning).",
            "Usually harmless; look for requests of the UAC missing from the capture."],
        CseqNotIncremented = "CSEQ_NOT_INCREMENTED" ["§D.2 D2",
            "The retry did not raise the CSeq, so it may be merged with the failed request (an error).",
            "Fix the UA's CSeq handling: RFC 3261 §8.1.3.5 asks for one higher."],
        BranchReused = "BRANCH_REUSED" ["§D.2 D3",
            "The retry reused the failed request's branch, so it looks like a retransmission (an error).",
            "Fix the UA: a retry is a new transaction with a new branch."],
        PrematureRetry = "PREMATURE_RETRY" ["§D.2 D4",
            "A request that would retry this failure was sent before the failure arrived, so it is not linked.",
            "Check clock skew between capture points, or a UA that does not wait for the final response."],
        NotRelaxed = "NOT_RELAXED" ["§D.2 D5",
            "The retry kept every refused tag.",
            "See kept_refused in failures.csv."],
        Partial = "PARTIAL" ["§D.2 D5",
            "The retry kept some refused tags.",
            "See kept_refused in failures.csv."],
        OverRelaxed = "OVER_RELAXED" ["§D.2 D6",
            "The retry dropped tags nobody refused; written OVER_RELAXED(tags).",
            "Check why the UA gave up those tags as well."],
        DependentDrop = "DEPENDENT_DROP" ["§D.1, §D.2 D6",
            "The retry dropped a tag that depends on a refused one (precondition after 100rel was refused); informational.",
            "Nothing: RFC 3312 §11 makes this drop a consequence of the refusal."],
        TagShuffled = "TAG_SHUFFLED" ["§D.2 D7",
            "A refused tag moved between Require and Proxy-Require instead of being dropped.",
            "Check the retry's Require and Proxy-Require headers."],
        NewRequirementAdded = "NEW_REQUIREMENT_ADDED" ["§D.2 D8",
            "The retry requires a tag the failed request did not (a warning).",
            "Check the retry's Require header: a new requirement can cause a new refusal."],
        DesiredListed = "DESIRED_LISTED" ["§D.2 D9",
            "The retry still lists the refused tags in Supported (\"set to desired\", the 23.228 wording).",
            "Nothing."],
        DesiredDropped = "DESIRED_DROPPED" ["§D.2 D9",
            "The retry no longer lists the refused tags even in Supported (RFC 3261 allows it).",
            "Only matters under require_desired_listing."],
        SdpNotRelaxed = "SDP_NOT_RELAXED" ["§D.2 D10",
            "Preconditions were refused but the retry's SDP still marks them mandatory.",
            "Look at the retry's a=des lines."],
        SdpOverRelaxed = "SDP_OVER_RELAXED" ["§D.2 D10",
            "The retry lowered the SDP precondition strength although preconditions were not refused.",
            "Compare first_precondition and retry_precondition."],
        MediaChanged = "MEDIA_CHANGED" ["§D.2 D11",
            "The retry changed the media lines or codecs (informational).",
            "Compare the two SDP offers if media matters."],
        RetryLoop = "RETRY_LOOP" ["§D.2 D12",
            "This link repeated an unchanged request after another unchanged link.",
            "Look at the UA's retry logic."],
        RetryLimitExceeded = "RETRY_LIMIT_EXCEEDED" ["§D.2 D12",
            "The session has more capability retries than max_retries.",
            "Check the UA's retry count; the policy reason RETRY_LIMIT follows from it."],
        RetryWindowCut = "RETRY_WINDOW_CUT" ["§D.3 item 4",
            "NO_RETRY although the capture ends less than window_s after the failure: a later retry cannot be excluded.",
            "Capture longer to be sure."],
        Stepwise = "STEPWISE" ["§D.3 item 14",
            "The session relaxed in several compliant steps (e.g. first precondition, then 100rel).",
            "Nothing."],
        MidDialog = "MID_DIALOG" ["§A.1",
            "The failure is on an in-dialog request (re-INVITE, UPDATE, PRACK), or the dialog began before the capture.",
            "Read the dialog around it: the call itself may be fine."],
        AmbiguousLink = "AMBIGUOUS_LINK" ["§A.3, §J",
            "Two candidate retries came within 0.1 confidence of each other; the best one was linked.",
            "Check the links column and related_sessions."],
        CandidateLateRetry = "CANDIDATE_LATE_RETRY" ["§G.19, §J",
            "A request that looks like a retry came after the linking window, so it was not linked.",
            "If retries that late are normal for this UE, raise window_s in the policy."],
        ForkMixedCapability = "FORK_MIXED_CAPABILITY" ["§A.4",
            "At a forking proxy one branch refused a capability that another branch accepted.",
            "Nothing for the UE; the branches have different capabilities."],
        ForkedMultiAnswer = "FORKED_MULTI_ANSWER" ["§A.4",
            "Several branches answered 2xx; the extra ones are normally ended with BYE.",
            "Nothing; it is not an error."],
        CancelBefore1xx = "CANCEL_BEFORE_1XX" ["§A.5",
            "The UAC sent CANCEL before any provisional response (a UAC bug, RFC 3261 §9.1).",
            "Check the UAC's CANCEL timing."],
        CancelRaceAnswered = "CANCEL_RACE_ANSWERED" ["§A.5",
            "A 2xx crossed the CANCEL: the call was established and should be ended by BYE.",
            "Check that a BYE followed."],
        ProxyRewrite = "PROXY_REWRITE" ["§A.6",
            "A proxy changed Require or Proxy-Require between hops (not a relaxation by the UE).",
            "Nothing, unless the proxy should not touch these headers."],
        PrackUnmatched = "PRACK_UNMATCHED" ["§G.7",
            "A PRACK acknowledged no reliable provisional response (its RAck matches none).",
            "Check the RAck of the PRACK against the RSeq of the 1xx."],
        PrackMissing = "PRACK_MISSING" ["§G.7",
            "A reliable provisional response was never acknowledged by PRACK.",
            "Check the UAC's 100rel support."],
        VantageNetwork = "VANTAGE_NETWORK" ["§G.20",
            "The capture holds no copy of the first request as the UE sent it: it was taken inside the network.",
            "Read UE behaviour with care; capture at the UE side (Gm) if possible."],
        InconsistentExperience = "INCONSISTENT_EXPERIENCE" ["§F",
            "The same subscriber, destination class and refused capability gave different results depending on the visited network, access or UE profile.",
            "Compare the sessions of the group: the ambiguous-experience problem of 23.228 §5.4.2."],
        ImsProfileDeviation = "IMS_PROFILE_DEVIATION" ["§B.5 L1",
            "Mandatory SDP preconditions without Require: precondition (normal IMS practice, against RFC 3312 §11).",
            "Nothing; informational lint."],
        PreconditionPrereqMissing = "PRECONDITION_PREREQ_MISSING" ["§B.5 L2",
            "Preconditions are used without 100rel in Supported or Require, or without UPDATE in Allow.",
            "Check the UA's Supported and Allow headers."],
        RseqInconsistent = "RSEQ_INCONSISTENT" ["§B.5 L3",
            "A reliable 1xx without RSeq, or an RSeq without Require: 100rel.",
            "Check the remote's 100rel implementation."],
        RequireInCancelOrAck = "REQUIRE_IN_CANCEL_OR_ACK" ["§B.5 L4",
            "Require or Proxy-Require in a CANCEL or in an ACK for a non-2xx (they must be ignored there).",
            "Informational; the UA should not send them."],
        RequirePreconditionInModification = "REQUIRE_PRECONDITION_IN_MODIFICATION" ["§B.5 L5",
            "Require: precondition in a re-INVITE, UPDATE or PRACK (24.229 asks for Supported).",
            "Informational; check the UE's session modification."],
        SessionLevelPrecondition = "SESSION_LEVEL_PRECONDITION" ["§B.5 L6",
            "Precondition lines (a=des/curr/conf) at SDP session level instead of media level.",
            "Informational; check the SDP."],
        PolicyNotEnforced = "POLICY_NOT_ENFORCED" ["§E.4",
            "A relaxation the policy denies got a 2xx or left the home network: nobody stopped it.",
            "Check the S-CSCF/AS policy enforcement."],
    }
}

names! {
    /// The failure categories of rules.md §C (the upper-case identifier that
    /// opens each Category cell), in C-id order, plus MALFORMED_421.
    pub enum Category {
        RemoteLacksPrecondition = "REMOTE_LACKS_PRECONDITION" ["§C C01",
            "The remote refused preconditions with a 420.",
            "Expect a retry without Require: precondition (verdict column)."],
        RemoteLacks100rel = "REMOTE_LACKS_100REL" ["§C C02",
            "The remote refused reliable provisional responses (100rel) with a 420.",
            "Expect a retry without Require: 100rel (verdict column)."],
        ProxyLacksExtension = "PROXY_LACKS_EXTENSION" ["§C C03",
            "A proxy refused a tag that was only in Proxy-Require.",
            "Check which proxy refused (responder) and whether it should support the tag."],
        SecAgreeUnsupported = "SEC_AGREE_UNSUPPORTED" ["§C C04",
            "The P-CSCF or registrar refused sec-agree (usually on REGISTER).",
            "Check the security agreement setup; a retry without it is SECURITY_DOWNGRADE."],
        RemoteLacksOtherExtension = "REMOTE_LACKS_OTHER_EXTENSION" ["§C C05",
            "The remote refused another required extension (timer, replaces, gruu, ...).",
            "See capability for the tags."],
        Malformed420 = "MALFORMED_420" ["§C C06",
            "A 420 without a usable Unsupported header (RFC 3261 §21.4.15 requires it).",
            "Fix the remote; what was refused is inferred from the retry."],
        Inconsistent420 = "INCONSISTENT_420" ["§C C07",
            "A 420 listing tags the request did not require.",
            "Check the remote's 420 against the request's Require."],
        RemoteRequiresExtension = "REMOTE_REQUIRES_EXTENSION" ["§C C08",
            "The remote answered 421: it requires an extension the request did not offer.",
            "Expect a retry that offers the extension (EXTENSION_REQUIRED_*)."],
        Malformed421 = "MALFORMED_421" ["§C C08",
            "A 421 without Require: the remote requires something but does not say what.",
            "Fix the remote."],
        SecAgreeRequired = "SEC_AGREE_REQUIRED" ["§C C09",
            "The remote answered 494: the request must use sec-agree.",
            "Expect a retry with sec-agree and Security-Client."],
        PreconditionNotMet = "PRECONDITION_NOT_MET" ["§C C10",
            "A 580: the remote supports preconditions but could not meet them (not a refusal).",
            "Check resource reservation (QoS bearer) on either side."],
        RemoteRejectsPreconditionSdp = "REMOTE_REJECTS_PRECONDITION_SDP" ["§C C11",
            "A 488/606 whose Warning names the precondition SDP lines.",
            "Expect a retry without mandatory preconditions."],
        MediaNegotiationFailure = "MEDIA_NEGOTIATION_FAILURE" ["§C C12",
            "A 488/606 without precondition evidence: the media did not match.",
            "Compare the offer's codecs with the remote's."],
        PreconditionIgnored = "PRECONDITION_IGNORED" ["§C C13",
            "The remote answered without precondition lines: it does not support them, but the call can proceed.",
            "Nothing; typical of a non-IMS remote."],
        RemoteLacksUpdate = "REMOTE_LACKS_UPDATE" ["§C C14",
            "The remote refused UPDATE (405 or 501).",
            "Preconditions cannot complete without UPDATE; check the remote's Allow."],
        RemoteLacksUpdatePredicted = "REMOTE_LACKS_UPDATE_PREDICTED" ["§C C15",
            "The remote's Allow lacks UPDATE while preconditions are in use.",
            "Expect a refused UPDATE later in the call."],
        PrackFailure = "PRACK_FAILURE" ["§C C16",
            "The PRACK was refused (405/501) or matched nothing (481).",
            "Check the RAck and the remote's 100rel support."],
        RemoteViolates100rel = "REMOTE_VIOLATES_100REL" ["§C C17",
            "The request required 100rel but the remote sent an unreliable 18x.",
            "Check the remote's 100rel implementation."],
        PrackTimeout = "PRACK_TIMEOUT" ["§C C18",
            "A 5xx after a reliable 1xx that was never acknowledged by PRACK.",
            "Check why the UAC did not PRACK."],
        HomePolicyReject = "HOME_POLICY_REJECT" ["§C C19",
            "A home node rejected a relaxed retry (policy enforcement).",
            "See policy_verdict: POLICY_ENFORCED or POLICY_OVERBLOCKED."],
        NoFinalResponse = "NO_FINAL_RESPONSE" ["§C C20",
            "No final response within Timer B, or a 408.",
            "Check reachability of the remote."],
        PreconditionStall = "PRECONDITION_STALL" ["§C C21",
            "The early dialog with preconditions made no progress for T_stall before it ended (suspected).",
            "Check the UPDATE exchange and resource reservation."],
        CallerCancelled = "CALLER_CANCELLED" ["§C C22",
            "The caller cancelled (CANCEL, then 487).",
            "Nothing; the user hung up."],
        CseqNotIncremented = "CSEQ_NOT_INCREMENTED" ["§C C23",
            "A 482: the retry repeated the failed request's CSeq with a new branch.",
            "Fix the UA's CSeq handling."],
        SessionIntervalTooSmall = "SESSION_INTERVAL_TOO_SMALL" ["§C C24",
            "A 422: the session timer was too short (a chain link, not relaxation).",
            "Nothing; the retry raises Session-Expires."],
    }
}

names! {
    /// The POLICY_VIOLATION reasons of rules.md §E.4, in the order listed
    /// there.
    pub enum Reason {
        RelaxationForbidden = "RELAXATION_FORBIDDEN" ["§E.4 step 2c",
            "The policy forbids every relaxation (allowed = false, or a rule without conditions).",
            "The UE should not have relaxed; or change [relaxation] allowed."],
        DestIms = "DEST_IMS" ["§E.4 step 2c",
            "The policy does not allow relaxation toward this destination class (usually IMS).",
            "Check destination_class and [relaxation] allowed_destinations."],
        CapabilityNotRelaxable = "CAPABILITY_NOT_RELAXABLE" ["§E.4 step 2c",
            "The relaxed capability is forbidden or not in allowed_capabilities.",
            "Check [relaxation] allowed_capabilities and forbidden_capabilities."],
        Subscriber = "SUBSCRIBER" ["§E.4 step 2b",
            "A rule forbids relaxation for this subscriber.",
            "See policy_rule for the rule."],
        Origin = "ORIGIN" ["§E.4 step 2b",
            "A rule forbids relaxation for this origin domain, visited network or access type.",
            "See policy_rule for the rule."],
        Emergency = "EMERGENCY" ["§E.4 step 2a",
            "Relaxation of an emergency call is forbidden ([emergency] relaxation = never).",
            "Check the national emergency policy."],
        RetryLimit = "RETRY_LIMIT" ["§E.4 step 2d",
            "The relaxation came after more retries than max_retries.",
            "Check the UE's retry count."],
        SameCallIdRequired = "SAME_CALL_ID_REQUIRED" ["§E.4 step 2d",
            "The policy requires the retry to keep the Call-ID (require_same_call_id).",
            "Check retry_link: it is not H0."],
        DesiredListingRequired = "DESIRED_LISTING_REQUIRED" ["§E.4 step 2d",
            "The policy requires the refused tags to stay in Supported (require_desired_listing).",
            "Check the retry's Supported header."],
    }
}

names! {
    /// The kinds of policy verdict of rules.md §E.4, most severe first (the
    /// reason of a violation is [`Reason`]; see [`super::PolicyVerdict`]).
    pub enum PolicyKind {
        Violation = "POLICY_VIOLATION" ["§E.4",
            "The UE or a network element attempted a relaxation the home policy denies; written POLICY_VIOLATION:<REASON>.",
            "See the reason and policy_rule; POLICY_NOT_ENFORCED in flags means nobody stopped it."],
        Overblocked = "POLICY_OVERBLOCKED" ["§E.4",
            "A home node rejected a relaxation that the policy allows (network misconfiguration).",
            "Check the rejecting node's configuration against the policy."],
        Undetermined = "POLICY_UNDETERMINED" ["§E.4, §E.2 step 5",
            "The policy could not decide: the destination class is unknown.",
            "Add the destination's domain to ims_domains or non_ims_domains, or set unknown_as."],
        Enforced = "POLICY_ENFORCED" ["§E.4",
            "A denied relaxation was rejected by a home node: the expected network behaviour.",
            "Nothing for the network; the UE attempted a forbidden relaxation."],
        Compliant = "POLICY_COMPLIANT" ["§E.4",
            "The relaxation is allowed by the home policy.",
            "Nothing."],
        RespectedByUe = "POLICY_RESPECTED_BY_UE" ["§E.4",
            "The policy forbids the relaxation and the UE did not attempt it (informational).",
            "Nothing; the call failed as the policy intends."],
    }
}

names! {
    /// The session outcome of rules.md §D.3 (amended in §J).
    pub enum Outcome {
        Established = "ESTABLISHED" ["§D.3, §J",
            "The INVITE got a 2xx: the call was set up.",
            "Nothing."],
        Completed = "COMPLETED" ["§J",
            "A request other than INVITE got a 2xx.",
            "Nothing."],
        Failed = "FAILED" ["§D.3",
            "The last attempt got a final 3xx-6xx; the code is in final_status.",
            "See failure_class and verdict."],
        Cancelled = "CANCELLED" ["§D.3",
            "The caller cancelled the call.",
            "Nothing, unless cancels follow a stall (PRECONDITION_STALL)."],
        Timeout = "TIMEOUT" ["§D.3",
            "A 408, or no final response although the capture runs on past Timer B.",
            "Check reachability of the remote."],
        Truncated = "TRUNCATED" ["§D.3, §A.1",
            "The capture ends too early to know how the call ended, or began after the dialog started.",
            "Capture longer, or add the neighbouring rotated files."],
    }
}

names! {
    /// The UE profile of rules.md §F (sessions.csv `ue_profile`).
    pub enum UeProfile {
        R5Strict = "R5_STRICT" ["§F",
            "The first INVITE requires preconditions (or 100rel with mandatory SDP): a Rel-5 style UE.",
            "Expect NO_RETRY toward non-IMS destinations if the UE cannot relax."],
        R6plusRelaxed = "R6PLUS_RELAXED" ["§F",
            "The first INVITE offers preconditions without requiring them: a Rel-6 or later UE.",
            "Nothing."],
        NoPrecondition = "NO_PRECONDITION" ["§F",
            "The first INVITE uses no preconditions at all (a non-IMS client, or an access without reservation).",
            "Nothing."],
    }
}

names! {
    /// The destination class of rules.md §E.2 (`destination_class`).
    pub enum DestClass {
        Ims = "IMS" ["§E.2",
            "The Request-URI's host is an IMS network (ims_domains, a home node, or an IMS signature).",
            "Relaxation toward it is denied under the default policy."],
        NonIms = "NON_IMS" ["§E.2",
            "The destination is not an IMS network (an Internet client).",
            "Relaxation toward it is allowed under the default policy."],
        Unknown = "UNKNOWN" ["§E.2 step 5",
            "The destination class could not be decided (tel: URI, IP literal, urn:).",
            "Map it with unknown_as or tel_uri_class in the policy."],
    }
}
