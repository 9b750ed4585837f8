-- Erasing a lead is one statement: writing its tombstone (a hash of tenant and email) deletes the
-- lead, and the foreign key's cascade deletes its timeline; the lead's alert deliveries lose the
-- bodies that carry its data, and those not yet sent are dropped.
CREATE TRIGGER erased_leads_erase AFTER INSERT ON erased_leads
BEGIN
    DELETE FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
    UPDATE alert_deliveries SET body = NULL,
        last_error = CASE status WHEN 'pending' THEN 'lead_erased' ELSE last_error END,
        status = CASE status WHEN 'pending' THEN 'dropped' ELSE status END
    WHERE tenant_id = NEW.tenant_id AND lead_id = NEW.lead_id;
END;
