-- Erasing a lead is one statement: writing its tombstone (a hash of tenant and email) deletes the
-- lead, and the foreign key's cascade deletes its timeline.
CREATE TRIGGER erased_leads_erase AFTER INSERT ON erased_leads
BEGIN
    DELETE FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
END;
