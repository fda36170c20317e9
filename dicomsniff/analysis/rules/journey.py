"""The study journey's finding codes (its checks are in dicomsniff/analysis/journey/): listed
here, with the rules' other codes, so that the catalogue (``dicomsniff rules``) and
``--disable-rule`` know them without importing the journey."""

from __future__ import annotations

from .base import code

# -- checks ------------------------------------------------------------------------------------

MISMATCH = code("STUDY-ATTR-MISMATCH", "warning", "IHE RAD CDIP 7.3; PS3.4 F.7.2",
                "an identifying attribute differs between the worklist item, the MPPS and the "
                "images of one study")
ACCESSION = code("STUDY-ACCESSION-MISSING", "warning", "IHE RAD CDIP 7.3; PS3.3 C.7.2.1",
                 "images stored without the Accession Number the worklist or MPPS had")
MPPS_NOT_STORED = code("STUDY-MPPS-NOT-STORED", "warning", "PS3.3 C.7.3.1; PS3.4 F.7.2",
                       "instances the MPPS lists as performed were never stored")
STORED_NOT_MPPS = code("STUDY-STORED-NOT-IN-MPPS", "warning", "PS3.3 C.7.3.1; PS3.4 F.7.2",
                       "instances stored successfully that no MPPS of the study lists")
NOT_COMMITTED = code("STUDY-NOT-COMMITTED", "warning", "PS3.4 J.3",
                     "stored instances never included in a storage commitment request")
IAN_NOT_STORED = code("STUDY-IAN-NOT-STORED", "warning", "PS3.4 R.2; PS3.3 C.4.23",
                      "an IAN lists instances that were never stored")
IAN_MISSING = code("STUDY-IAN-MISSING", "warning", "PS3.4 R.2; PS3.3 C.4.23",
                   "stored instances missing from every IAN about their study")
UNSCHEDULED = code("STUDY-UNSCHEDULED", "warning", "PS3.4 F.7.2.1; IHE RAD TF-1 4.4.1",
                   "images of a study no worklist item scheduled, while worklist traffic for "
                   "that modality was seen")
CAP = code("STUDY-CAP", "warning", None,
           "more studies followed at once than the cap: the oldest are judged early")
FAILED = code("STUDY-JOURNEY-FAILED", "warning", None,
              "the study journey could not file a transaction (a dicomsniff bug)")

# -- printing ----------------------------------------------------------------------------------

NOT_PRINTED = code("PRINT-FILM-NOT-PRINTED", "warning", "PS3.4 H.4.2.2.4",
                   "a film box created and never printed (no N-ACTION on it or its session)")
EMPTY_BOX = code("PRINT-IMAGE-BOX-EMPTY", "warning", "PS3.4 H.4.3.1.2",
                 "a film box printed with image boxes that were never given an image (N-SET)")
PRINTER_STATUS = code("PRINT-PRINTER-STATUS", "warning", "PS3.4 H.4.11; PS3.3 C.13.9.1",
                      "the printer reported WARNING or FAILURE (N-EVENT-REPORT or N-GET)")
JOB_FAILED = code("PRINT-JOB-FAILED", "error", "PS3.4 H.4.10; PS3.3 C.13.8.1",
                  "a print job reported FAILURE")
NO_ROLE = code("PRINT-REPORT-NO-ROLE", "warning", "PS3.7 D.3.3.4; PS3.4 H.4.11.1",
               "a print N-EVENT-REPORT sent by the association requestor without the SCP role "
               "negotiated for that SOP class")

# -- ups ---------------------------------------------------------------------------------------

ILLEGAL = code("UPS-ILLEGAL-TRANSITION", "warning", "PS3.4 CC.1.1 (Table CC.1.1-2)",
               "a workitem state change the UPS state machine does not allow was requested")
TUID = code("UPS-TRANSACTION-UID", "warning", "PS3.4 CC.1.1; CC.2.1.3",
            "an N-SET or final state change of an IN PROGRESS workitem without the Transaction "
            "UID that claimed it")
REPORT_MISSING = code("UPS-REPORT-MISSING", "warning", "PS3.4 CC.2.4.3; CC.2.3",
                      "a subscriber got no UPS State Report for a state change it had "
                      "subscribed to")
STORE_CUT = code("STUDY-STORE-CUT", "info", "PS3.8 9.3.1; PS3.7 9.1.1",
                 "a C-STORE began before the capture did: its data set header was not "
                 "captured, so its study is unknown")
