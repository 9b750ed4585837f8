-- The same for an email erased before: the tombstone's upsert takes the UPDATE path.
CREATE TRIGGER erased_leads_erase_again AFTER UPDATE ON erased_leads
BEGIN
    DELETE FROM leads WHERE tenant_id = NEW.tenant_id AND id = NEW.lead_id;
END;
